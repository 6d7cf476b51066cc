"""WeChat Pay protocol code against fixed vectors.

The expected signatures were computed independently with `openssl dgst -sha256 -sign` over the
documented message layouts, using the test-only key in `tests/fixtures/wechat/`; PKCS#1 v1.5
signatures are deterministic, so exact strings can be compared. Where the `wechatpayv3` client
library has a matching helper, it is used as a second, independent implementation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from multidict import CIMultiDict
from wechatpayv3 import utils as sdk
from yarl import URL

from channels.base import CreateResult, Method, TradeState
from channels.errors import (
    ChannelError,
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
)
from channels.http import HttpAnswer
from channels.wechat import crypto
from channels.wechat.crypto import VerificationError
from channels.wechat.notification import build_notification, decode_notification
from channels.wechat.protocol import answers, codes, requests, wire

FIXTURES = Path(__file__).parents[2] / "fixtures" / "wechat"
PRIVATE_KEY = crypto.load_private_key((FIXTURES / "test_private_key.pem").read_text())
PUBLIC_KEY = crypto.load_public_key((FIXTURES / "test_public_key.pem").read_text())
KEY_ID = "PUB_KEY_ID_0112345678901234567890123456789012"

MERCHANT = wire.Merchant(
    mchid="1230000109",
    appid="wxd678efh567hg6787",
    serial_no="444F4864EA9B34415A1B2C3D4E5F60718293A4B5",
    private_key=PRIVATE_KEY,
)
BASE_URL = "https://api.mch.weixin.qq.com"
TIMESTAMP = 1554208460
NONCE = "593BEC0C930BF1AFEB40B4A08C8FB242"

NATIVE_BODY = (
    '{"appid":"wxd678efh567hg6787","mchid":"1230000109",'
    '"description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018",'
    '"notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"}}'
).encode()
NATIVE_SIGNATURE = (
    "jH2qfxV/joIiNi0y1ySutT27unGY/V2DQBFKnYjK3r8enExL16t/+SvkYuIAXHiJO//kjf1p43/xZ+etMje6c08Y"
    "22psZvZ+kFtt2I370yTI4nMPSFc6SA1OAb/AXm8zAdOHaAIh2TGZyJDpZ7Pkfo5e774MEq76SFJswdi70ljlb7qI"
    "ZjUViSVujwgAsusSpOESz//pJTMi3QzXRMQJ+bGHz4dA9mjc1lZyLTV9V7cZ8HKy37ePVFoCl5ICUA3p7slpG56L"
    "7bPdd+PcSyK6sKbUtD9ux0ElELvgqK6UoOwdKAoYtMMfRByGY74ydmVlVww3loxJOkIFA2BE2KxDrA=="
)
QUERY_SIGNATURE = (
    "GYt5OrO9IJgDwe9L2KIGrBcvFKZiAxZn2XYL3BVk1leOGyRvzua9DD+QJryFPqebDBkN1gp0BPrj+emI4XlkvGqs"
    "H00Y47uASZlqJdtcvsVZSkPlklxMo23Bf8Mg4h14vtUloHI0wP27Kit/aMcfWxcRFQ9ZuWtCaOVHn/fjKIOA/0sX"
    "xu85kKanmquGXTF8l39/bYWT2rlnmvCBMkk7YBbSnr9wFUFla9jlA5aAVJYEkzqWqn0A8iDagKiVD80aqgIVKL/2"
    "GHd4S5OT5W4HTUkzk4lPK1UM9Bd9X+jHwBBaKao808R0FZeswX2mBJkCF+VpJdqANgn5gT50JF2tUA=="
)
ANSWER_TIMESTAMP = 1554209980
ANSWER_NONCE = "c5ac7061fccab6bf3e254dcf98995b8c"
ANSWER_BODY = b'{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}'
ANSWER_SIGNATURE = (
    "ChOH1DOflGB+cWfRUeoj4+jWDR/FNSOHlnAKbzKW4THUUQRUkhKOXfwydhdjBHp7L1nVep3cMcX9809bBs0l/ABb"
    "nOT0SsYLAcYdDbcbVqpASUARW4gLjoGVXwdfv1FSxaE9f+M7S7fRgaF7lKThVlQG6/rZ4m168/24kZghj51/KIiE"
    "II3/IAhcYdDIkCNcNvIbeHOGbif2bvC22HVT0PNXPitGOP3LXaDAhLSVW/C7NH/RiWDuqqYWp2KmnDb+70i7WBGV"
    "zO3ucBAIoZNA9vtN6N3EaMACZ6u7WCOHoadJPihTMftVqEl9G5hCXdHLfcldRGpjvmxCO421X0X+3w=="
)
EMPTY_BODY_SIGNATURE = (
    "bbLEOuN3+xs0cQc2AUEHz+vl4bcSdPLpYjrnuSc66GEzStzLugU7Mh8oIzfFfkhXZgiwAjlru6Of7zr1igUo2Bjz"
    "qKNX9GFjbO20s4Cw7LpQfAczVSfzzta4Er8Xv67ySlfmztQKLGLxcnCP5OuCaako6oaMldK8mhdltq8GVWLQsyea"
    "/XrWV8O21Ab8Ffo0RUTGoHXvL7Zifaz3VRu2jgnXh4gE2zwqfJiw8zf4KAEUsxMR7wS8/chNWhlSrFIVsE5QXusx"
    "ogtgCMQtSi9sV4rY0d2Xb1xdAHvC5FzsGoWmwUI87z2jSVbvsw1XCIVaPEdjlUOn8B+4BU+jgEKXIw=="
)
PAY_APPID = "wx8888888888888888"
PAY_TIMESTAMP = 1414561699
PAY_NONCE = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
PREPAY_ID = "wx201410272009395522657a690389285100"
JSAPI_PAY_SIGN = (
    "gPDa3AxCUeFjCCN0VEPUYk5paTlCJmYhKnHb725/4A7hxSDGzxR5QdxR92RhKvtMp30krONO93AVTtwl6KG6PtjJ"
    "KJrYuDxKTeSNzjnzlpIzXIETb31srVVmPw/TA98mf9QloIOeKDC54EA6MkB9G/EZq5wkJCBnbJXQlwlWz50XnBJ9"
    "+69XQVhNONzlwxoS/EAdgc9kb3FIO7lAOjN93lWSPzdlKVKAJKr8TicCNxK6N5Wbu5fYPWgK6JtrZj99ABo2gpbI"
    "skoZ+yRZEzPdRfdqtSqrv2D1tOaIPzbDpM+o7AWDo+tkwBo824xZuROqSaTjYQTWh0qPia60Ff43hw=="
)
APP_PAY_SIGN = (
    "K25T0kX0GB+T4mdWf2bGFrzJnJ7+WtCAXMuqZw3UozTpro2YNj70LdYJfxds7XQVh46uZ/pYOcFVyhSU/y2ebKdP"
    "ZsUne6DhGMe+5NwzBWvson4p2gLo3ZALPgWchDaL/pAUSg7OfzZPMAsWtqDwJcsxiF+Yiq/z3klfRo6xe46X1c3k"
    "SQrydKyKWaE50q5/YqvhiDDapgNqAU3ubQt9JeperN4vJs9J8wIr8NrCLv90jZgGTbSv+wH4DVIdVZlstb5jxcp8"
    "23OmrKiEQEWfteo+MoSAE6N5+auSt+1bPm1okfOmqSceYbOfH4XcpTTcIB5yXXcHaKGz8xJ4oGwR/A=="
)
APIV3_KEY = "0123456789abcdefABCDEF0123456789"
AES_NONCE = "a1b2c3d4e5f6"
AES_PLAINTEXT = b'{"out_trade_no":"1217752501201407033233368018","trade_state":"SUCCESS"}'
AES_CIPHERTEXT = (
    "ALJpWgfjwGXln2bIJUQ8zZkH7Al41qml6QyxMX9POCtbLa/ItLhi/PGXbpAS1rZwhcSsMw0lQUyJmM7noHtIbFTr"
    "N+K4civddQaAXdzhOn+AODHgIP34"
)
NATIVE_ORDER = requests.OrderRequest(
    method="qr",
    out_trade_no="1217752501201407033233368018",
    description="Image形象店-深圳腾大-QQ公仔",
    total=100,
    currency="CNY",
    notify_url="https://www.weixin.qq.com/wxpay/pay.php",
)


def auth_header(signature: str) -> str:
    return (
        f'WECHATPAY2-SHA256-RSA2048 mchid="1230000109",nonce_str="{NONCE}",'
        f'signature="{signature}",timestamp="{TIMESTAMP}",serial_no="{MERCHANT.serial_no}"'
    )


def answer(status: int, body: bytes | Mapping[str, object] = b"") -> HttpAnswer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpAnswer.build(status, {"Content-Type": "application/json"}, raw)


# Request signatures


def test_native_create_request_is_signed_exactly() -> None:
    request = requests.build_create_request(
        MERCHANT, BASE_URL, NATIVE_ORDER, timestamp=TIMESTAMP, nonce=NONCE
    )
    assert request.method == "POST"
    assert request.url == "https://api.mch.weixin.qq.com/v3/pay/transactions/native"
    assert request.body == NATIVE_BODY
    assert request.headers["Authorization"] == auth_header(NATIVE_SIGNATURE)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"


def test_query_request_signs_path_with_query_and_empty_body() -> None:
    request = requests.build_query_request(
        MERCHANT, BASE_URL, "1217752501201407033233368018", timestamp=TIMESTAMP, nonce=NONCE
    )
    assert request.method == "GET"
    assert request.url == (
        "https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/"
        "1217752501201407033233368018?mchid=1230000109"
    )
    assert request.body == b""
    assert request.headers["Authorization"] == auth_header(QUERY_SIGNATURE)


def test_authorization_matches_the_sdk_message_layout() -> None:
    message = crypto.request_message(
        "POST", "/v3/pay/transactions/native", str(TIMESTAMP), NONCE, NATIVE_BODY
    )
    assert sdk.rsa_sign(PRIVATE_KEY, message.decode()) == NATIVE_SIGNATURE


def test_authorization_parses_and_verifies() -> None:
    auth = crypto.parse_authorization(auth_header(NATIVE_SIGNATURE))
    assert auth.mchid == "1230000109"
    assert auth.nonce_str == NONCE
    assert auth.timestamp == str(TIMESTAMP)
    assert auth.serial_no == MERCHANT.serial_no
    crypto.verify_authorization(
        auth,
        PUBLIC_KEY,
        method="POST",
        path_with_query="/v3/pay/transactions/native",
        body=NATIVE_BODY,
        now=TIMESTAMP + 5,
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v3/pay/transactions/native", NATIVE_BODY.replace(b"100", b"101")),
        ("POST", "/v3/pay/transactions/native", NATIVE_BODY + b" "),
        ("POST", "/v3/pay/transactions/h5", NATIVE_BODY),
        ("PUT", "/v3/pay/transactions/native", NATIVE_BODY),
    ],
    ids=["amount", "whitespace", "path", "method"],
)
def test_tampered_request_is_refused(method: str, path: str, body: bytes) -> None:
    auth = crypto.parse_authorization(auth_header(NATIVE_SIGNATURE))
    with pytest.raises(VerificationError) as caught:
        crypto.verify_authorization(
            auth, PUBLIC_KEY, method=method, path_with_query=path, body=body, now=TIMESTAMP
        )
    assert caught.value.reason == "signature"


def test_tampered_signature_is_refused() -> None:
    forged = NATIVE_SIGNATURE[:10] + ("A" if NATIVE_SIGNATURE[10] != "A" else "B")
    forged += NATIVE_SIGNATURE[11:]
    auth = crypto.parse_authorization(auth_header(forged))
    with pytest.raises(VerificationError, match="does not verify"):
        crypto.verify_authorization(
            auth,
            PUBLIC_KEY,
            method="POST",
            path_with_query="/v3/pay/transactions/native",
            body=NATIVE_BODY,
            now=TIMESTAMP,
        )


@pytest.mark.parametrize("skew", [-301, 301])
def test_request_timestamp_window(skew: int) -> None:
    auth = crypto.parse_authorization(auth_header(NATIVE_SIGNATURE))
    with pytest.raises(VerificationError) as caught:
        crypto.verify_authorization(
            auth,
            PUBLIC_KEY,
            method="POST",
            path_with_query="/v3/pay/transactions/native",
            body=NATIVE_BODY,
            now=TIMESTAMP + skew,
        )
    assert caught.value.reason == "timestamp"


@pytest.mark.parametrize(
    "header",
    [
        "",
        'Bearer mchid="1"',
        'WECHATPAY2-SHA256-RSA2048 mchid="1230000109",nonce_str="x"',
        "WECHATPAY2-SHA256-RSA2048 mchid=1230000109",
    ],
)
def test_malformed_authorization(header: str) -> None:
    with pytest.raises(VerificationError) as caught:
        crypto.parse_authorization(header)
    assert caught.value.reason == "malformed"


def test_signed_path_is_the_path_as_sent() -> None:
    # `|` must be percent-encoded on the wire; the signature must cover the encoded form.
    request = requests.build_query_request(
        MERCHANT, BASE_URL, "A|b*c-1_2", timestamp=TIMESTAMP, nonce=NONCE
    )
    sent = URL(request.url).raw_path_qs
    assert sent == "/v3/pay/transactions/out-trade-no/A%7Cb*c-1_2?mchid=1230000109"
    auth = crypto.parse_authorization(request.headers["Authorization"])
    crypto.verify_authorization(
        auth, PUBLIC_KEY, method="GET", path_with_query=sent, body=b"", now=TIMESTAMP
    )


# Answer signatures


def test_answer_is_signed_exactly() -> None:
    headers = crypto.sign_answer(
        PRIVATE_KEY, KEY_ID, ANSWER_BODY, timestamp=ANSWER_TIMESTAMP, nonce=ANSWER_NONCE
    )
    assert headers == {
        "Wechatpay-Timestamp": str(ANSWER_TIMESTAMP),
        "Wechatpay-Nonce": ANSWER_NONCE,
        "Wechatpay-Signature": ANSWER_SIGNATURE,
        "Wechatpay-Serial": KEY_ID,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    assert sdk.rsa_verify(
        str(ANSWER_TIMESTAMP), ANSWER_NONCE, ANSWER_BODY.decode(), ANSWER_SIGNATURE, PUBLIC_KEY
    )


def test_empty_answer_is_signed_over_an_empty_body() -> None:
    headers = crypto.sign_answer(
        PRIVATE_KEY, KEY_ID, b"", timestamp=ANSWER_TIMESTAMP, nonce=ANSWER_NONCE
    )
    assert headers["Wechatpay-Signature"] == EMPTY_BODY_SIGNATURE


def signed_headers(body: bytes = ANSWER_BODY) -> CIMultiDict[str]:
    return CIMultiDict(
        crypto.sign_answer(
            PRIVATE_KEY, KEY_ID, body, timestamp=ANSWER_TIMESTAMP, nonce=ANSWER_NONCE
        )
    )


def test_answer_verifies_with_lowercase_headers() -> None:
    headers = CIMultiDict({k.lower(): v for k, v in signed_headers().items()})
    crypto.verify_answer(headers, ANSWER_BODY, {KEY_ID: PUBLIC_KEY}, now=ANSWER_TIMESTAMP)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": ANSWER_BODY.replace(b"p4l", b"p4m")}, "signature"),
        ({"Wechatpay-Signature": ANSWER_SIGNATURE[::-1]}, "signature"),
        ({"Wechatpay-Nonce": "other"}, "signature"),
        ({"Wechatpay-Serial": "PUB_KEY_ID_0199"}, "signature"),
        ({"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, "signature"),
        ({"Wechatpay-Signature": ""}, "signature"),
        ({"Wechatpay-Timestamp": str(ANSWER_TIMESTAMP - 400)}, "timestamp"),
    ],
    ids=["body", "signature", "nonce", "serial", "type", "missing", "stale"],
)
def test_tampered_answer_is_refused(change: dict[str, object], reason: str) -> None:
    headers = signed_headers()
    body = ANSWER_BODY
    for name, value in change.items():
        if name == "body":
            assert isinstance(value, bytes)
            body = value
        else:
            assert isinstance(value, str)
            headers[name] = value
    with pytest.raises(VerificationError) as caught:
        crypto.verify_answer(headers, body, {KEY_ID: PUBLIC_KEY}, now=ANSWER_TIMESTAMP)
    assert caught.value.reason == reason


# Pay-sign parameters


def test_jsapi_pay_params() -> None:
    params = crypto.jsapi_pay_params(
        PRIVATE_KEY, appid=PAY_APPID, prepay_id=PREPAY_ID, timestamp=PAY_TIMESTAMP, nonce=PAY_NONCE
    )
    assert params == {
        "appId": PAY_APPID,
        "timeStamp": str(PAY_TIMESTAMP),
        "nonceStr": PAY_NONCE,
        "package": f"prepay_id={PREPAY_ID}",
        "signType": "RSA",
        "paySign": JSAPI_PAY_SIGN,
    }


def test_app_pay_params() -> None:
    params = crypto.app_pay_params(
        PRIVATE_KEY,
        appid=PAY_APPID,
        mchid="1230000109",
        prepay_id=PREPAY_ID,
        timestamp=PAY_TIMESTAMP,
        nonce=PAY_NONCE,
    )
    assert params == {
        "appid": PAY_APPID,
        "partnerid": "1230000109",
        "prepayid": PREPAY_ID,
        "package": "Sign=WXPay",
        "noncestr": PAY_NONCE,
        "timestamp": str(PAY_TIMESTAMP),
        "sign": APP_PAY_SIGN,
    }


# AES-256-GCM


def test_aes_gcm_fixed_vector() -> None:
    sealed = crypto.aes_gcm_encrypt(APIV3_KEY, AES_NONCE, "transaction", AES_PLAINTEXT)
    assert sealed == AES_CIPHERTEXT
    assert crypto.aes_gcm_decrypt(APIV3_KEY, AES_NONCE, "transaction", sealed) == AES_PLAINTEXT
    opened = sdk.aes_decrypt(AES_NONCE, AES_CIPHERTEXT, "transaction", APIV3_KEY)
    assert opened == AES_PLAINTEXT.decode()


def test_aes_gcm_round_trip_with_unicode() -> None:
    plaintext = json.dumps({"description": "腾讯充值中心-QQ会员充值"}, ensure_ascii=False).encode()
    sealed = crypto.aes_gcm_encrypt(APIV3_KEY, "000000000000", "transaction", plaintext)
    assert crypto.aes_gcm_decrypt(APIV3_KEY, "000000000000", "transaction", sealed) == plaintext


@pytest.mark.parametrize(
    ("key", "nonce", "associated", "ciphertext"),
    [
        (APIV3_KEY, AES_NONCE, "transaction", "B" + AES_CIPHERTEXT[1:]),
        (APIV3_KEY, AES_NONCE, "refund", AES_CIPHERTEXT),
        (APIV3_KEY, "a1b2c3d4e5f7", "transaction", AES_CIPHERTEXT),
        ("1" + APIV3_KEY[1:], AES_NONCE, "transaction", AES_CIPHERTEXT),
        (APIV3_KEY, AES_NONCE, "transaction", "not base64!"),
        ("short", AES_NONCE, "transaction", AES_CIPHERTEXT),
    ],
    ids=["ciphertext", "associated-data", "nonce", "key", "base64", "key-length"],
)
def test_aes_gcm_refuses_tampering(key: str, nonce: str, associated: str, ciphertext: str) -> None:
    with pytest.raises(VerificationError) as caught:
        crypto.aes_gcm_decrypt(key, nonce, associated, ciphertext)
    assert caught.value.reason == "decrypt"


# Answers


PAID_TRANSACTION: dict[str, object] = {
    "appid": "wxd678efh567hg6787",
    "mchid": "1230000109",
    "out_trade_no": "1217752501201407033233368018",
    "transaction_id": "1217752501201407033233368018",
    "trade_type": "NATIVE",
    "trade_state": "SUCCESS",
    "trade_state_desc": "支付成功",
    "bank_type": "CMC",
    "attach": "",
    "success_time": "2018-06-08T10:34:56+08:00",
    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
}


def test_query_answer_paid() -> None:
    status = answers.parse_query_answer(
        answer(200, PAID_TRANSACTION), "1217752501201407033233368018"
    )
    assert status.state is TradeState.SUCCEEDED
    assert status.channel_state == "SUCCESS"
    assert status.channel_trade_no == "1217752501201407033233368018"
    assert status.amount == 100
    assert status.currency == "CNY"
    assert status.account_id == "1230000109"
    assert status.paid_at == datetime(2018, 6, 8, 2, 34, 56, tzinfo=UTC)
    assert status.paid_at is not None
    assert status.paid_at.tzinfo is not None


def test_query_answer_for_another_order_is_unknown() -> None:
    with pytest.raises(ChannelOutcomeUnknown):
        answers.parse_query_answer(answer(200, PAID_TRANSACTION), "another")


@pytest.mark.parametrize("total", [100.0, "100", True])
def test_query_answer_refuses_non_integer_amounts(total: object) -> None:
    body = {**PAID_TRANSACTION, "amount": {"total": total, "currency": "CNY"}}
    with pytest.raises(ChannelOutcomeUnknown):
        answers.parse_query_answer(answer(200, body), "1217752501201407033233368018")


def test_query_answer_not_found() -> None:
    body = {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
    status = answers.parse_query_answer(answer(404, body), "A1")
    assert status.state is TradeState.NOT_FOUND
    assert status.order_no == "A1"


@pytest.mark.parametrize(
    ("trade_state", "expected"),
    [
        ("SUCCESS", TradeState.SUCCEEDED),
        ("REFUND", TradeState.SUCCEEDED),
        ("NOTPAY", TradeState.PENDING),
        ("USERPAYING", TradeState.PENDING),
        ("CLOSED", TradeState.CLOSED),
        ("REVOKED", TradeState.CLOSED),
        ("PAYERROR", TradeState.FAILED),
    ],
)
def test_trade_state_mapping(trade_state: str, expected: TradeState) -> None:
    assert codes.map_trade_state(trade_state) is expected


def test_unknown_trade_state_is_not_guessed() -> None:
    with pytest.raises(ValueError, match="unknown trade_state"):
        codes.map_trade_state("PAID")


ERROR_CASES: list[tuple[int, str | bytes, type[ChannelError], str, str]] = [
    (400, "PARAM_ERROR", ChannelRejected, "PARAM_ERROR", "request"),
    (400, "INVALID_REQUEST", ChannelRejected, "INVALID_REQUEST", "request"),
    (400, "ORDER_CLOSED", ChannelRejected, "ORDER_CLOSED", "request"),
    (401, "SIGN_ERROR", ChannelRejected, "SIGN_ERROR", "request"),
    (403, "NO_AUTH", ChannelRejected, "NO_AUTH", "request"),
    (403, "ORDERPAID", ChannelRejected, "ORDERPAID", "request"),
    (403, "ORDER_CLOSED", ChannelRejected, "ORDER_CLOSED", "request"),
    (403, "NOT_ENOUGH", ChannelRejected, "NOT_ENOUGH", "buyer"),
    (400, "AUTH_CODE_INVALID", ChannelRejected, "AUTH_CODE_INVALID", "buyer"),
    (429, "RATELIMIT_EXCEEDED", ChannelUnavailable, "RATELIMIT_EXCEEDED", "channel"),
    (503, b"<html>Service Unavailable</html>", ChannelUnavailable, "503", "channel"),
    (500, "SYSTEM_ERROR", ChannelOutcomeUnknown, "SYSTEM_ERROR", "channel"),
    (502, b"Bad Gateway", ChannelOutcomeUnknown, "502", "channel"),
    (504, b"", ChannelOutcomeUnknown, "504", "channel"),
    (400, b"<html>Bad Request</html>", ChannelOutcomeUnknown, "400", "channel"),
    (302, b"", ChannelOutcomeUnknown, "302", "channel"),
]


@pytest.mark.parametrize(("status", "body", "kind", "code", "fault"), ERROR_CASES)
def test_error_answers(
    status: int, body: str | bytes, kind: type[ChannelError], code: str, fault: str
) -> None:
    raw = body if isinstance(body, bytes) else {"code": body, "message": "说明", "detail": {}}
    with pytest.raises(kind) as caught:
        answers.parse_create_answer(
            "qr", answer(status, raw), MERCHANT, timestamp=PAY_TIMESTAMP, nonce=PAY_NONCE
        )
    assert type(caught.value) is kind
    assert caught.value.code == code
    assert caught.value.fault == fault


def test_close_answers() -> None:
    answers.parse_close_answer(answer(204))
    answers.parse_close_answer(answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}))
    with pytest.raises(ChannelRejected, match="ORDERPAID"):
        answers.parse_close_answer(answer(403, {"code": "ORDERPAID", "message": "已支付"}))


def create_result(method: Method, body: dict[str, object]) -> CreateResult:
    return answers.parse_create_answer(
        method, answer(200, body), MERCHANT, timestamp=PAY_TIMESTAMP, nonce=PAY_NONCE
    )


def test_create_answers_become_actions() -> None:
    qr = create_result("qr", {"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"})
    assert qr.action.as_dict() == {
        "type": "qr_code",
        "qr_code": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz",
    }
    assert qr.state is TradeState.PENDING
    h5 = create_result("h5", {"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb"})
    assert h5.action.type == "redirect"
    assert h5.action.url == "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb"
    jsapi = create_result("jsapi", {"prepay_id": PREPAY_ID})
    assert jsapi.action.type == "app_params"
    assert jsapi.action.params is not None
    assert jsapi.action.params["package"] == f"prepay_id={PREPAY_ID}"
    assert jsapi.action.params["appId"] == MERCHANT.appid
    app = create_result("app", {"prepay_id": PREPAY_ID})
    assert app.action.params is not None
    assert app.action.params["prepayid"] == PREPAY_ID
    assert app.action.params["partnerid"] == MERCHANT.mchid


def test_codepay_answers() -> None:
    paid = create_result("barcode", PAID_TRANSACTION)
    assert paid.state is TradeState.SUCCEEDED
    assert paid.channel_trade_no == "1217752501201407033233368018"
    assert paid.paid_at is not None
    waiting = answers.parse_create_answer(
        "barcode",
        answer(202, {"code": "USERPAYING", "message": "需要用户输入支付密码"}),
        MERCHANT,
        timestamp=PAY_TIMESTAMP,
        nonce=PAY_NONCE,
    )
    assert waiting.state is TradeState.PENDING


def test_create_answer_without_code_is_unknown() -> None:
    with pytest.raises(ChannelOutcomeUnknown, match="code_url"):
        create_result("qr", {"prepay_id": PREPAY_ID})


def test_create_request_inputs_per_method() -> None:
    expires = datetime(2018, 6, 8, 2, 34, 56, tzinfo=UTC)
    order = requests.OrderRequest(
        method="h5",
        out_trade_no="A1234567",
        description="d",
        total=1,
        currency="CNY",
        notify_url="https://example.com/n",
        time_expire=expires,
        client_ip="203.0.113.9",
    )
    payload = requests.create_payload(MERCHANT, order)
    assert payload["time_expire"] == "2018-06-08T10:34:56+08:00"
    assert payload["scene_info"] == {"payer_client_ip": "203.0.113.9", "h5_info": {"type": "Wap"}}
    with pytest.raises(ChannelRejected, match="client_ip"):
        requests.create_payload(MERCHANT, replace(order, client_ip=None))
    with pytest.raises(ChannelRejected, match="timezone-aware"):
        requests.create_payload(MERCHANT, replace(order, time_expire=datetime(2030, 1, 1)))
    jsapi = replace(order, method="jsapi", openid="oX")
    assert requests.create_payload(MERCHANT, jsapi)["payer"] == {"openid": "oX"}
    with pytest.raises(ChannelRejected, match="web"):
        requests.build_create_request(
            MERCHANT,
            BASE_URL,
            replace(order, method="web"),
            timestamp=TIMESTAMP,
            nonce=NONCE,
        )


def test_times() -> None:
    moment = datetime(2018, 6, 8, 10, 34, 56, 999, tzinfo=timezone(timedelta(hours=8)))
    assert wire.format_time(moment) == "2018-06-08T10:34:56+08:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        wire.format_time(datetime(2018, 6, 8))
    with pytest.raises(ValueError, match="offset"):
        wire.parse_time("2018-06-08T10:34:56")
    assert wire.parse_time("2018-06-08T10:34:56+08:00") == moment.replace(microsecond=0)


# Notifications


def test_notification_round_trip() -> None:
    body = build_notification(
        notification_id="EV-2018022511223320873",
        create_time=datetime(2015, 5, 20, 13, 29, 35, tzinfo=timezone(timedelta(hours=8))),
        resource=PAID_TRANSACTION,
        apiv3_key=APIV3_KEY,
        nonce=AES_NONCE,
    )
    envelope = json.loads(body)
    assert envelope["event_type"] == "TRANSACTION.SUCCESS"
    assert envelope["resource_type"] == "encrypt-resource"
    assert envelope["create_time"] == "2015-05-20T13:29:35+08:00"
    assert envelope["resource"]["associated_data"] == "transaction"
    assert envelope["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    notification = decode_notification(body, APIV3_KEY)
    assert notification.notification_id == "EV-2018022511223320873"
    assert notification.event_type == "TRANSACTION.SUCCESS"
    assert notification.refund is None
    assert notification.trade is not None
    assert notification.trade.state is TradeState.SUCCEEDED
    assert notification.trade.amount == 100


def test_notification_with_tampered_ciphertext() -> None:
    body = build_notification(
        notification_id="EV-1",
        create_time=datetime.now(UTC),
        resource=PAID_TRANSACTION,
        apiv3_key=APIV3_KEY,
        nonce=AES_NONCE,
    )
    envelope = json.loads(body)
    ciphertext = envelope["resource"]["ciphertext"]
    envelope["resource"]["ciphertext"] = ("A" if ciphertext[0] != "A" else "B") + ciphertext[1:]
    with pytest.raises(VerificationError) as caught:
        decode_notification(json.dumps(envelope).encode(), APIV3_KEY)
    assert caught.value.reason == "decrypt"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id":"x","event_type":"TRANSACTION.SUCCESS"}',
        b'{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"SM4"}}',
    ],
)
def test_malformed_notifications(body: bytes) -> None:
    with pytest.raises(VerificationError) as caught:
        decode_notification(body, APIV3_KEY)
    assert caught.value.reason == "malformed"


def test_notification_event_and_resource_must_agree() -> None:
    # A refund resource under a payment event (or the reverse) is not read as either.
    body = build_notification(
        notification_id="EV-2",
        create_time=datetime.now(UTC),
        resource={"out_trade_no": "A", "refund_status": "SUCCESS"},
        apiv3_key=APIV3_KEY,
        nonce=AES_NONCE,
        event_type="TRANSACTION.SUCCESS",
        original_type="refund",
    )
    with pytest.raises(VerificationError, match="not a payment or refund notification"):
        decode_notification(body, APIV3_KEY)
    other = build_notification(
        notification_id="EV-3",
        create_time=datetime.now(UTC),
        resource=PAID_TRANSACTION,
        apiv3_key=APIV3_KEY,
        nonce=AES_NONCE,
        event_type="MARKETING.COUPON",
    )
    with pytest.raises(VerificationError, match=r"MARKETING\.COUPON"):
        decode_notification(other, APIV3_KEY)
