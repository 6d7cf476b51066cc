"""Hostile input at every channel's notification parsing: nothing but `NotificationRejected`.

A notification is whatever anyone posts to `/v1/notify/{account}`. Whatever its headers and
body (Unicode digits, undecodable bytes, deep JSON, huge numbers, wrong types), the adapter
must answer with a `Notification` or refuse with `NotificationRejected`, which the router
counts by reason; any other exception would be a 500 and a traceback.

Two layers are fuzzed per channel: the raw request (headers and body as anyone could send
them), and, signed with the sandbox's channel key, well-formed envelopes whose fields hold
arbitrary values: what only the channel could send, but what the parsing after the signature
check must still survive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.alipay import AlipayAccount
from channels.alipay import build as build_alipay
from channels.alipay.crypto import sign_notification
from channels.alipay.sandbox import credentials_path as alipay_credentials
from channels.alipay.sandbox import ensure_sandbox as alipay_sandbox
from channels.base import Channel, Notification
from channels.errors import NotificationRejected
from channels.unionpay import UnionPayAccount
from channels.unionpay import build as build_unionpay
from channels.unionpay import crypto as unionpay_crypto
from channels.unionpay.sandbox import credentials_path as unionpay_credentials
from channels.unionpay.sandbox import ensure_sandbox as unionpay_sandbox
from channels.wechat import WeChatAccount
from channels.wechat import build as build_wechat
from channels.wechat.crypto import sign_answer
from channels.wechat.notification import build_notification
from channels.wechat.protocol.wire import dump_json
from channels.wechat.sandbox import credentials_path as wechat_credentials
from channels.wechat.sandbox import ensure_sandbox as wechat_sandbox
from tests.channels.harnesses.alipay import install_sandbox as install_alipay
from tests.channels.harnesses.wechat import install_sandbox as install_wechat
from tests.channels.unionpay.keys import install_sandbox as install_unionpay

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

header_text = st.one_of(
    st.text(max_size=40),
    # aiohttp hands undecodable header bytes over as surrogate escapes.
    st.binary(max_size=40).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
    st.sampled_from(["²", "٣٣", "１７", str(int(time.time())), "9" * 5000, " 1", "-1", "1e3"]),
)
"""Header values as aiohttp gives them to a handler."""

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["²", "٢٠٢٤-01-01T00:00:00+08:00", "2026-01-01T00:00:00+08:00"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)

form_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "²", "٣٣", "00", "03", "19.99", "0.5", "2026-01-01 10:00:00", "9" * 40]),
    st.from_regex(r"[0-9]{1,16}", fullmatch=True),
)


@dataclass(frozen=True)
class Sandboxes:
    """The three sandbox accounts and a channel adapter built for each."""

    wechat: Channel
    alipay: Channel
    unionpay: Channel
    sign_wechat: Callable[[bytes], dict[str, str]]
    sign_alipay: Callable[[Mapping[str, str]], dict[str, str]]
    sign_unionpay: Callable[[Mapping[str, str]], dict[str, str]]
    wechat_apiv3_key: str
    wechat_mchid: str
    alipay_app_id: str
    unionpay_mer_id: str


async def _adapters(root: Path) -> tuple[Channel, Channel, Channel]:
    offline = "http://127.0.0.1:9"
    async with aiohttp.ClientSession() as session:
        wechat = build_wechat(
            "wechat_main",
            WeChatAccount.model_validate(
                {
                    "type": "wechat",
                    "base_url": offline,
                    "credentials": {"file": str(wechat_credentials(root / "wechat"))},
                }
            ),
            root,
            session,
        )
        alipay = build_alipay(
            "alipay_main",
            AlipayAccount.model_validate(
                {
                    "type": "alipay",
                    "base_url": offline,
                    "credentials": {"file": str(alipay_credentials(root / "alipay"))},
                }
            ),
            root,
            session,
        )
        unionpay = build_unionpay(
            "unionpay_main",
            UnionPayAccount.model_validate(
                {
                    "type": "unionpay",
                    "base_url": offline,
                    "credentials": {"file": str(unionpay_credentials(root / "unionpay"))},
                }
            ),
            root,
            session,
        )
    # parse_notification makes no call: the closed session is never used.
    return wechat, alipay, unionpay


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Sandboxes:
    root = tmp_path_factory.mktemp("fuzz-sandboxes")
    wechat_account = wechat_sandbox(install_wechat(root / "wechat"))
    alipay_account = alipay_sandbox(install_alipay(root / "alipay"))
    unionpay_account = unionpay_sandbox(install_unionpay(root / "unionpay"))
    wechat, alipay, unionpay = asyncio.run(_adapters(root))

    def sign_wechat(body: bytes) -> dict[str, str]:
        return sign_answer(
            wechat_account.platform_private_key,
            wechat_account.credentials.platform_public_key_id,
            body,
            timestamp=int(time.time()),
            nonce="5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        )

    def sign_alipay(fields: Mapping[str, str]) -> dict[str, str]:
        return sign_notification(alipay_account.alipay_private_key, fields)

    def sign_unionpay(fields: Mapping[str, str]) -> dict[str, str]:
        out = {**fields, unionpay_crypto.CERT_FIELD: unionpay_account.channel_cert_pem}
        out[unionpay_crypto.SIGNATURE_FIELD] = unionpay_crypto.sign(
            out, unionpay_account.channel_key
        )
        return out

    return Sandboxes(
        wechat=wechat,
        alipay=alipay,
        unionpay=unionpay,
        sign_wechat=sign_wechat,
        sign_alipay=sign_alipay,
        sign_unionpay=sign_unionpay,
        wechat_apiv3_key=wechat_account.credentials.apiv3_key.get_secret_value(),
        wechat_mchid=wechat_account.mchid,
        alipay_app_id=alipay_account.app_id,
        unionpay_mer_id=unionpay_account.mer_id,
    )


def parsed_or_refused(channel: Channel, headers: Mapping[str, str], body: bytes) -> None:
    """The only two ways a notification may end."""
    refusal: NotificationRejected | None = None
    try:
        note = channel.parse_notification(headers, body)
    except NotificationRejected as exc:
        refusal = exc
    if refusal is not None:
        assert refusal.reason and refusal.message
    else:
        assert isinstance(note, Notification)


@pytest.mark.parametrize("wallet", ["wechat", "alipay", "unionpay"])
@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Wechatpay-Timestamp",
                "Wechatpay-Nonce",
                "Wechatpay-Signature",
                "Wechatpay-Serial",
                "Wechatpay-Signature-Type",
                "Content-Type",
            ]
        ),
        header_text,
    ),
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        st.just(b"[" * 5000),
        st.just(b"1" * 5000),
    ),
)
def test_any_request_is_parsed_or_refused(
    sandboxes: Sandboxes, wallet: str, headers: dict[str, str], body: bytes
) -> None:
    channel: Channel = getattr(sandboxes, wallet)
    parsed_or_refused(channel, headers, body)


@pytest.mark.parametrize(
    "name", ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial", "Wechatpay-Signature"]
)
@FUZZ
@given(value=header_text)
def test_wechat_signature_header_of_any_text(sandboxes: Sandboxes, name: str, value: str) -> None:
    body = b'{"id":"x"}'
    headers = sandboxes.sign_wechat(body)
    headers[name] = value
    parsed_or_refused(sandboxes.wechat, headers, body)


@FUZZ
@given(
    envelope=st.dictionaries(
        st.sampled_from(["id", "event_type", "resource", "create_time", "summary"]), json_values
    )
)
def test_signed_wechat_envelope_of_any_shape(
    sandboxes: Sandboxes, envelope: dict[str, Any]
) -> None:
    body = dump_json(envelope)
    parsed_or_refused(sandboxes.wechat, sandboxes.sign_wechat(body), body)


@FUZZ
@given(
    resource=st.dictionaries(
        st.sampled_from(
            [
                "mchid",
                "out_trade_no",
                "trade_state",
                "transaction_id",
                "success_time",
                "amount",
                "out_refund_no",
                "status",
                "refund_status",
                "refund_id",
            ]
        ),
        json_values,
    ),
    event_type=st.sampled_from(["TRANSACTION.SUCCESS", "REFUND.SUCCESS", "REFUND.CLOSED"]),
    own_mchid=st.booleans(),
)
def test_signed_wechat_resource_of_any_content(
    sandboxes: Sandboxes, resource: dict[str, Any], event_type: str, own_mchid: bool
) -> None:
    if own_mchid:
        resource["mchid"] = sandboxes.wechat_mchid
    original = "refund" if event_type.startswith("REFUND") else "transaction"
    body = build_notification(
        notification_id="EV-2018022511223320873",
        create_time=datetime.now(UTC),
        resource=resource,
        apiv3_key=sandboxes.wechat_apiv3_key,
        nonce="fdasflkja484",
        event_type=event_type,
        original_type=original,
    )
    parsed_or_refused(sandboxes.wechat, sandboxes.sign_wechat(body), body)


ALIPAY_FIELDS = [
    "notify_id",
    "notify_type",
    "app_id",
    "trade_no",
    "out_trade_no",
    "trade_status",
    "total_amount",
    "gmt_payment",
    "send_pay_date",
    "out_biz_no",
    "gmt_refund",
    "refund_fee",
]


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(ALIPAY_FIELDS), form_values), own_app=st.booleans())
def test_signed_alipay_form_of_any_content(
    sandboxes: Sandboxes, fields: dict[str, str], own_app: bool
) -> None:
    if own_app:
        fields |= {"app_id": sandboxes.alipay_app_id, "notify_type": "trade_status_sync"}
    body = urlencode(sandboxes.sign_alipay(fields)).encode()
    parsed_or_refused(sandboxes.alipay, {}, body)


UNIONPAY_FIELDS = [
    "merId",
    "txnType",
    "respCode",
    "queryId",
    "orderId",
    "txnAmt",
    "txnTime",
    "currencyCode",
]


@FUZZ
@given(
    fields=st.dictionaries(st.sampled_from(UNIONPAY_FIELDS), form_values),
    own_merchant=st.booleans(),
    txn_type=st.sampled_from(["01", "04", "²", ""]),
)
def test_signed_unionpay_form_of_any_content(
    sandboxes: Sandboxes, fields: dict[str, str], own_merchant: bool, txn_type: str
) -> None:
    if own_merchant:
        fields |= {"merId": sandboxes.unionpay_mer_id, "txnType": txn_type}
    body = urlencode(sandboxes.sign_unionpay(fields)).encode()
    parsed_or_refused(sandboxes.unionpay, {}, body)


@pytest.mark.parametrize("amount", ["²", "٣٣", "9" * 5000, "-1", "0"])
def test_unionpay_amount_of_unicode_digits_is_refused(sandboxes: Sandboxes, amount: str) -> None:
    fields = {
        "merId": sandboxes.unionpay_mer_id,
        "txnType": "01",
        "respCode": "00",
        "queryId": "2024011512345678",
        "orderId": "payAbC123xyz",
        "txnAmt": amount,
    }
    body = urlencode(sandboxes.sign_unionpay(fields)).encode()
    with pytest.raises(NotificationRejected) as caught:
        sandboxes.unionpay.parse_notification({}, body)
    assert caught.value.reason == "malformed"
