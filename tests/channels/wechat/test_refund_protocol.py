"""WeChat Pay refund messages against fixed vectors and documented answers.

The expected signatures were computed independently with `openssl dgst -sha256 -sign` over
the documented request layout, with the test-only key in `tests/fixtures/wechat/`. Answer and
notification bodies follow the examples of WeChat's refund documentation.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from channels.base import RefundState
from channels.errors import (
    ChannelError,
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
)
from channels.wechat.crypto import VerificationError
from channels.wechat.notification import build_notification, decode_notification
from channels.wechat.protocol import answers, codes, requests
from tests.channels.wechat.test_protocol import (
    AES_NONCE,
    APIV3_KEY,
    BASE_URL,
    MERCHANT,
    NONCE,
    TIMESTAMP,
    answer,
    auth_header,
)

REFUND_NO = "1217752501201407033233368018"
REQUEST = requests.RefundRequest(
    out_trade_no="1217752501201407033233368018",
    out_refund_no=REFUND_NO,
    refund=888,
    total=888,
    currency="CNY",
    notify_url="https://weixin.qq.com",
    reason="商品已售完",
)
REFUND_BODY = (
    '{"out_trade_no":"1217752501201407033233368018","out_refund_no":"1217752501201407033233368018",'
    '"reason":"商品已售完","notify_url":"https://weixin.qq.com",'
    '"amount":{"refund":888,"total":888,"currency":"CNY"}}'
).encode()
REFUND_SIGNATURE = (
    "X+v/jPyDxv1NPlb8g0FWpNucVr+M/2QAvxrAFWhR1z9+NTy9wQwoXMRRqW4pGwDCPBURC82vZK7KWqCSjpPJS4fo"
    "oiDME/uE6rpBZ2AOonz6r8A6ASs/e8EAzCi9yFdcJLhXHDjcKnSZVPNAVEmScaCp1WoRWUS/OSYSHjMi5lBUMdHz"
    "nxo55IvQXKma5C1rnkqraR9bbLLIDnv6thxioR3pTeLSh60ILqLWps2t7RHro8czGQG2ge05S56B0ncxUh3fTOR9"
    "13YXiMrRtcBpFMAB4xKHa3/PT5UPYU/TmFZUPcOkyt1WfQQIFyBM2zKEzcjnLWLFdwTAlYR67sdQUA=="
)
QUERY_SIGNATURE = (
    "H/xum4QXrwa/zf+ymHi0g8gDsd7rpGwCLlT8+IG/QUfMcvSSsTfPi6xqVEht9RMkC7e6XqL44bnKw3P7VPn0iKVC"
    "oU8d1fcJqeZJJ3zvprhXRXbQ+eLoPj6Q2YtBPCXeOSWBYeAjKrDLUI+k6vq4RI4EVxgsjKJm/YL/6SkKbpywgphc"
    "KjFPcaTtRhfWZBIniu85t+KcheQ8KpUJlDKcVEyp1N2tJG3TgVPZ63J8EOsrgiwzdUvAPKGc74AsKhAuyGy8gQ3p"
    "yU9g2t/dKZjCElMXPW6xYOWmjH+Y3JJDaA7cuXuQhe3Mk88VEcDLVhkQdmmtd39wZk5P+ZGh9jDekw=="
)
REFUND_ANSWER: dict[str, object] = {
    "refund_id": "50000000382019052709732678859",
    "out_refund_no": REFUND_NO,
    "transaction_id": "1217752501201407033233368018",
    "out_trade_no": "1217752501201407033233368018",
    "channel": "ORIGINAL",
    "user_received_account": "招商银行信用卡0403",
    "success_time": "2020-12-01T16:18:12+08:00",
    "create_time": "2020-12-01T16:18:12+08:00",
    "status": "SUCCESS",
    "funds_account": "UNSETTLED",
    "amount": {
        "total": 100,
        "refund": 100,
        "from": [],
        "payer_total": 90,
        "payer_refund": 90,
        "settlement_refund": 100,
        "settlement_total": 100,
        "discount_refund": 10,
        "currency": "CNY",
        "refund_fee": 0,
    },
    "promotion_detail": [],
}
REFUND_RESOURCE: dict[str, object] = {
    "mchid": MERCHANT.mchid,
    "out_trade_no": "1217752501201407033233368018",
    "transaction_id": "1217752501201407033233368018",
    "out_refund_no": REFUND_NO,
    "refund_id": "50000000382019052709732678859",
    "refund_status": "SUCCESS",
    "success_time": "2018-06-08T10:34:56+08:00",
    "user_received_account": "招商银行信用卡0403",
    "amount": {"total": 999, "refund": 999, "payer_total": 999, "payer_refund": 999},
}


def test_refund_request_is_signed_exactly() -> None:
    request = requests.build_refund_request(
        MERCHANT, BASE_URL, REQUEST, timestamp=TIMESTAMP, nonce=NONCE
    )
    assert request.method == "POST"
    assert request.url == "https://api.mch.weixin.qq.com/v3/refund/domestic/refunds"
    assert request.body == REFUND_BODY
    assert request.headers["Authorization"] == auth_header(REFUND_SIGNATURE)
    assert request.headers["Content-Type"] == "application/json"


def test_refund_without_reason_leaves_it_out() -> None:
    payload = requests.refund_payload(replace(REQUEST, reason=None, refund=100))
    assert "reason" not in payload
    assert payload["amount"] == {"refund": 100, "total": 888, "currency": "CNY"}


def test_refund_query_request_is_signed_exactly() -> None:
    request = requests.build_refund_query_request(
        MERCHANT, BASE_URL, REFUND_NO, timestamp=TIMESTAMP, nonce=NONCE
    )
    assert request.method == "GET"
    assert request.url == f"https://api.mch.weixin.qq.com/v3/refund/domestic/refunds/{REFUND_NO}"
    assert request.body == b""
    assert request.headers["Authorization"] == auth_header(QUERY_SIGNATURE)


def test_refund_answer() -> None:
    status = answers.parse_refund_answer(answer(200, REFUND_ANSWER), REFUND_NO)
    assert status.refund_no == REFUND_NO
    assert (status.state, status.channel_state) == (RefundState.SUCCEEDED, "SUCCESS")
    assert status.order_no == "1217752501201407033233368018"
    assert status.channel_refund_no == "50000000382019052709732678859"
    assert status.amount == 100
    assert status.refunded_at == datetime(2020, 12, 1, 8, 18, 12, tzinfo=UTC)


def test_processing_refund_has_no_success_time() -> None:
    body = {**REFUND_ANSWER, "status": "PROCESSING"}
    del body["success_time"]
    status = answers.parse_refund_query_answer(answer(200, body), REFUND_NO)
    assert (status.state, status.refunded_at) == (RefundState.PENDING, None)


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("SUCCESS", RefundState.SUCCEEDED),
        ("PROCESSING", RefundState.PENDING),
        ("CLOSED", RefundState.FAILED),
        ("ABNORMAL", RefundState.FAILED),
    ],
)
def test_refund_state_mapping(word: str, state: RefundState) -> None:
    assert codes.map_refund_state(word) is state


@pytest.mark.parametrize(
    "body",
    [
        {**REFUND_ANSWER, "status": "REFUNDED"},
        {**REFUND_ANSWER, "out_refund_no": "another"},
        {**REFUND_ANSWER, "amount": {"refund": "100"}},
        {key: value for key, value in REFUND_ANSWER.items() if key != "status"},
    ],
    ids=["unknown-status", "other-refund", "string-amount", "no-status"],
)
def test_unreadable_refund_answers_are_unknown(body: dict[str, object]) -> None:
    with pytest.raises(ChannelOutcomeUnknown):
        answers.parse_refund_answer(answer(200, body), REFUND_NO)


def test_refund_answer_about_another_order_is_unknown() -> None:
    with pytest.raises(ChannelOutcomeUnknown, match="another order"):
        answers.parse_refund_query_answer(answer(200, REFUND_ANSWER), REFUND_NO, "another")
    status = answers.parse_refund_answer(
        answer(200, REFUND_ANSWER), REFUND_NO, "1217752501201407033233368018"
    )
    assert status.state is RefundState.SUCCEEDED


def test_refund_query_not_found() -> None:
    body = {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}
    status = answers.parse_refund_query_answer(answer(404, body), "R1")
    assert (status.refund_no, status.state) == ("R1", RefundState.NOT_FOUND)


REFUND_ERRORS: list[tuple[int, str, type[ChannelError], str]] = [
    (400, "PARAM_ERROR", ChannelRejected, "request"),
    (400, "INVALID_REQUEST", ChannelRejected, "request"),
    (403, "NOT_ENOUGH", ChannelRejected, "request"),
    (403, "NO_AUTH", ChannelRejected, "request"),
    (403, "USER_ACCOUNT_ABNORMAL", ChannelRejected, "buyer"),
    (404, "RESOURCE_NOT_EXISTS", ChannelRejected, "request"),
    (401, "SIGN_ERROR", ChannelRejected, "request"),
    (429, "FREQUENCY_LIMITED", ChannelUnavailable, "channel"),
    (503, "SYSTEM_ERROR", ChannelUnavailable, "channel"),
    (500, "SYSTEM_ERROR", ChannelOutcomeUnknown, "channel"),
]


@pytest.mark.parametrize(("status", "code", "kind", "fault"), REFUND_ERRORS)
def test_refund_errors(status: int, code: str, kind: type[ChannelError], fault: str) -> None:
    with pytest.raises(kind) as caught:
        answers.parse_refund_answer(answer(status, {"code": code, "message": "说明"}), REFUND_NO)
    assert type(caught.value) is kind
    assert (caught.value.code, caught.value.fault) == (code, fault)


def test_refund_query_errors_are_not_not_found() -> None:
    with pytest.raises(ChannelOutcomeUnknown):
        answers.parse_refund_query_answer(answer(500, {"code": "SYSTEM_ERROR"}), REFUND_NO)
    with pytest.raises(ChannelRejected):
        answers.parse_refund_query_answer(answer(404, {"code": "NOT_FOUND"}), REFUND_NO)


def refund_notification(event_type: str, resource: dict[str, object]) -> bytes:
    return build_notification(
        notification_id="EV-2018022511223320873",
        create_time=datetime.now(UTC),
        resource=resource,
        apiv3_key=APIV3_KEY,
        nonce=AES_NONCE,
        event_type=event_type,
        summary="退款成功",
        original_type="refund",
    )


def test_refund_notification_round_trip() -> None:
    body = refund_notification("REFUND.SUCCESS", REFUND_RESOURCE)
    notification = decode_notification(body, APIV3_KEY, mchid=MERCHANT.mchid)
    assert (notification.event_type, notification.trade) == ("REFUND.SUCCESS", None)
    status = notification.refund
    assert status is not None
    assert (status.refund_no, status.state) == (REFUND_NO, RefundState.SUCCEEDED)
    assert status.order_no == "1217752501201407033233368018"
    assert status.channel_refund_no == "50000000382019052709732678859"
    assert status.amount == 999
    assert status.refunded_at == datetime(2018, 6, 8, 2, 34, 56, tzinfo=UTC)


def test_abnormal_refund_notification() -> None:
    resource = {**REFUND_RESOURCE, "refund_status": "ABNORMAL"}
    del resource["success_time"]
    notification = decode_notification(refund_notification("REFUND.ABNORMAL", resource), APIV3_KEY)
    assert notification.refund is not None
    assert notification.refund.state is RefundState.FAILED


def test_refund_notification_for_another_merchant() -> None:
    body = refund_notification("REFUND.SUCCESS", {**REFUND_RESOURCE, "mchid": "1900000002"})
    with pytest.raises(VerificationError) as caught:
        decode_notification(body, APIV3_KEY, mchid=MERCHANT.mchid)
    assert caught.value.reason == "account"


def test_malformed_refund_resource() -> None:
    body = refund_notification("REFUND.SUCCESS", {"mchid": MERCHANT.mchid, "refund_status": "X"})
    with pytest.raises(VerificationError, match="malformed refund"):
        decode_notification(body, APIV3_KEY)
