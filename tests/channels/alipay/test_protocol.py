"""Alipay protocol code without I/O: signing vectors, exact `_response` bytes, amounts, times,
answer and error mapping, notifications."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from channels.alipay import crypto
from channels.alipay.notification import decode_notification, parse_form
from channels.alipay.protocol import answers, codes, requests, wire
from channels.alipay.protocol.wire import fen_to_yuan, yuan_to_fen
from channels.base import CreateOrder, OrderRef, RefundOrder, RefundState, TradeState
from channels.errors import ChannelOutcomeUnknown, ChannelRejected, ChannelUnavailable
from channels.http import HttpAnswer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "alipay"
APP_KEY = crypto.load_private_key((FIXTURES / "app_private_key.pem").read_text())
APP_PUBLIC = crypto.load_public_key((FIXTURES / "app_public_key.pem").read_text())
ALIPAY_KEY = crypto.load_private_key((FIXTURES / "alipay_private_key.pem").read_text())
ALIPAY_PUBLIC = crypto.load_public_key((FIXTURES / "alipay_public_key.pem").read_text())
APP = wire.App("2021000000000001", APP_KEY, ALIPAY_PUBLIC)
MOMENT = datetime(2024, 1, 15, 2, 30, tzinfo=UTC)
"""10:30:00 in Beijing."""

# Made with openssl (see tests/fixtures/alipay/README.md), not with the code under test.
REQUEST_STRING = (
    "app_id=2021000000000001"
    '&biz_content={"out_trade_no":"pay_A1001","total_amount":"19.99","subject":"T恤",'
    '"product_code":"FACE_TO_FACE_PAYMENT"}'
    "&charset=utf-8&format=JSON&method=alipay.trade.precreate"
    "&notify_url=https://merchant.example/notify&sign_type=RSA2"
    "&timestamp=2024-01-15 10:30:00&version=1.0"
)
REQUEST_SIGN = (
    "MNG6sYS2y6Acg2Cm3TD96f2UKkHLwpbJ0KO80652KWY2SuvaubodXzVw18hUUNk70aioD/tPXDFBJj/5GlTET9iXr4"
    "5uxySSynFl8AU6+HvyV4y1ByJ6YunuV5fY7pspSKubzyO24qI/WPurQMjdRZN4kOogwY+twiKWkLmcSuT0EW4OdzS"
    "UtCtKmCgdetRZpORpxGo4NL4WPKQzzgemgynxSgmDJnC2RXJ2nwCnvy1uSc04FhPb36UK2shj5VgBQIxHXg1CoVHx"
    "oEhLzD79AZ2y3v26wbg+3+fAZKG0gRXa0MC86TKLWyaSrf+ddDabQwVsV7m8+D0XCyelUYKQxA=="
)
ANSWER_OBJECT = (
    '{"code":"10000","msg":"Success","out_trade_no":"pay_A1001",'
    '"qr_code":"https://qr.alipay.com/bax03431ljhokirwl38f00a7"}'
)
ANSWER_SIGN = (
    "eQGyw+zyZkrjdq+97uzqGGQ4ncqwXT5CT740IUO9npkfIdruO2n0PDOs8aPcUKpigVc5Ucp6Eouv78PoKLxd/QAFP5"
    "jXsixDP2WaNlrnNPrpOPPvoqjyBK2syGmCmU8QxoopT5HGFkARZlFuhMViqGJc28p90LAO12xUyGTWGvs0yVnS/Mjq"
    "r2vBppaxwswYLMGOBfxLesnbsRc1H23SbjogaW2BUprxuQ5qA92eDMzUK6A2G61wHBUEVY2xclg2f6OXRYLMXPZx6l"
    "0G4hZv9MvtdoDVHTolg98l0Bs0m2fJSxLT3fNxNw0yIrVXmDd4GWwcY2aBTgXFhKlDRtVxOw=="
)
NOTIFY_FIELDS = {
    "app_id": "2021000000000001",
    "buyer_id": "2088102146225135",
    "gmt_payment": "2024-01-15 10:31:02",
    "notify_id": "ac05099524730693a8b330c5ecf72da9786",
    "notify_time": "2024-01-15 10:31:03",
    "notify_type": "trade_status_sync",
    "out_trade_no": "pay_A1001",
    "seller_id": "2088000000000001",
    "subject": "T恤",
    "total_amount": "19.99",
    "trade_no": "2024011522001404930500012345",
    "trade_status": "TRADE_SUCCESS",
}
NOTIFY_SIGN = (
    "k1hlb7vwdPqnt01iSBEBbGwf24JVYyIhcO+kyzW0vlGiGRM3eEbAr771sFaStHSbY2zar5R/ssL+TmTv2+naJS2ywI"
    "nlu0dkFnkpDLrth4BznHgv1ySL83d0gQgzvJe4pXtFYV+JQZ63lE1Und0qCz1yU96oxbvk2FJx9rpUNzMj6Z/q5eGg"
    "lA4c2vG9KskAnpea3pBIu3Cs/gmwSB0Ng5cftjL7GAYCrh463Px91uwgKLBWmckCNB1NV4Q+FKAF7S27vNfOW0Bamr"
    "Cod+ZlLLRQJ4gRrVLj1yqzzLS02blnRDFKGXQZms7psyCORbBQXqCS9wTwd8n+CcxWXkjmww=="
)


def order(method: Any = "qr", **changes: Any) -> CreateOrder:
    fields: dict[str, Any] = {
        "order_no": "pay_A1001",
        "created_at": MOMENT,
        "amount": 1999,
        "currency": "CNY",
        "method": method,
        "description": "T恤",
        "notify_url": "https://merchant.example/notify",
        **changes,
    }
    return CreateOrder(**fields)


def answer(body: bytes | str, status: int = 200) -> HttpAnswer:
    raw = body.encode() if isinstance(body, str) else body
    return HttpAnswer.build(status, {"Content-Type": "application/json"}, raw)


def signed_body(name: str, raw_object: str, key: rsa.RSAPrivateKey = ALIPAY_KEY) -> str:
    return f'{{"{name}":{raw_object},"sign":"{crypto.rsa2_sign(key, raw_object.encode())}"}}'


def reply_for(api_method: str, payload: dict[str, Any]) -> wire.Reply:
    body = crypto.build_answer(ALIPAY_KEY, crypto.response_key(api_method), payload)
    return answers.read_reply(answer(body), api_method, ALIPAY_PUBLIC)


# Signing vectors


def test_request_signature_vector() -> None:
    api_method, biz = requests.create_biz(order())
    params = wire.signed_params(
        APP, api_method, biz, now=MOMENT, notify_url="https://merchant.example/notify"
    )
    assert "return_url" not in params, "empty values are dropped"
    assert crypto.request_signing_string(params) == REQUEST_STRING
    assert params["sign"] == REQUEST_SIGN
    assert crypto.verify_request(APP_PUBLIC, params)


def test_request_signature_covers_every_parameter_but_sign() -> None:
    params = {"app_id": "1", "method": "m", "sign_type": "RSA2", "empty": "", "sign": "x"}
    assert crypto.request_signing_string(params) == "app_id=1&method=m&sign_type=RSA2"
    signed = crypto.sign_request(APP_KEY, params)
    assert crypto.verify_request(APP_PUBLIC, signed)
    assert not crypto.verify_request(APP_PUBLIC, {**signed, "method": "other"})
    assert not crypto.verify_request(APP_PUBLIC, {**signed, "sign_type": "RSA"})


def test_signed_query_survives_url_encoding() -> None:
    api_method, biz = requests.create_biz(order("web", return_url="https://m.example/back?a=1&b=2"))
    params = wire.signed_params(
        APP,
        api_method,
        biz,
        now=MOMENT,
        notify_url="https://m.example/n",
        return_url="https://m.example/r",
    )
    url = wire.browser_url("https://openapi.alipay.com/gateway.do", params)
    assert url.startswith("https://openapi.alipay.com/gateway.do?app_id=2021000000000001&")
    decoded = dict(parse_qsl(url.split("?", 1)[1]))
    assert decoded == params
    assert crypto.verify_request(APP_PUBLIC, decoded)


def test_answer_signature_vector() -> None:
    name = "alipay_trade_precreate_response"
    payload = json.loads(ANSWER_OBJECT)
    body = crypto.build_answer(ALIPAY_KEY, name, payload)
    assert body == f'{{"{name}":{ANSWER_OBJECT},"sign":"{ANSWER_SIGN}"}}'.encode()
    reply = answers.read_reply(answer(body), "alipay.trade.precreate", ALIPAY_PUBLIC)
    assert reply.ok
    assert reply.text("qr_code") == "https://qr.alipay.com/bax03431ljhokirwl38f00a7"


def test_notification_signature_vector() -> None:
    fields = {**NOTIFY_FIELDS, "sign_type": "RSA2", "sign": NOTIFY_SIGN}
    assert crypto.notification_signing_string(fields).startswith(
        "app_id=2021000000000001&buyer_id="
    )
    assert crypto.sign_notification(ALIPAY_KEY, NOTIFY_FIELDS)["sign"] == NOTIFY_SIGN
    note = decode_notification(urlencode(fields).encode(), ALIPAY_PUBLIC, "2021000000000001")
    assert note.notification_id == "ac05099524730693a8b330c5ecf72da9786"
    assert note.event_type == "trade_status_sync"
    assert note.trade is not None
    assert note.trade.order_no == "pay_A1001"
    assert note.trade.state is TradeState.SUCCEEDED
    assert note.trade.amount == 1999
    assert note.trade.channel_trade_no == "2024011522001404930500012345"
    assert note.trade.paid_at == datetime(2024, 1, 15, 2, 31, 2, tzinfo=UTC)
    assert note.trade.account_id == "2021000000000001"
    assert note.refund is None


def test_keys_load_from_bare_base64() -> None:
    pem = (FIXTURES / "app_private_key.pem").read_text()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    key = crypto.load_private_key(body)
    assert crypto.rsa2_sign(key, b"x") == crypto.rsa2_sign(APP_KEY, b"x")
    public = (FIXTURES / "alipay_public_key.pem").read_text()
    bare = "".join(line for line in public.splitlines() if not line.startswith("-----"))
    assert crypto.public_key_pem(crypto.load_public_key(bare)) == public
    with pytest.raises(ValueError, match="private key"):
        crypto.load_private_key("not a key")


# Exact `_response` bytes


@pytest.mark.parametrize(
    "raw_object",
    [
        ANSWER_OBJECT,
        '{ "code" : "10000",\n  "msg" : "Success", "qr_code": "https://qr.alipay.com/x" }',
        '{"msg":"Success","code":"10000","sub_msg":"括号 } 与 { 引号 \\" 在字符串里"}',
        '{"code":"10000","msg":"Success","note":"\\u6210\\u529f","url":"https:\\/\\/x"}',
        '{"code":"10000","msg":"Success","fund_bill_list":[{"amount":"1.00","x":{}}],"n":1.50}',
    ],
)
def test_signature_covers_the_exact_response_bytes(raw_object: str) -> None:
    body = signed_body("alipay_trade_precreate_response", raw_object)
    signed = crypto.open_answer(body.encode(), "alipay.trade.precreate")
    assert signed.raw == raw_object.encode()
    assert signed.verified(ALIPAY_PUBLIC)
    reply = answers.read_reply(answer(body), "alipay.trade.precreate", ALIPAY_PUBLIC)
    assert reply.code == "10000"


def test_re_serialised_objects_would_not_verify() -> None:
    raw_object = '{"msg":"Success", "code":"10000","note":"\\u6210\\u529f"}'
    body = signed_body("alipay_trade_query_response", raw_object)
    reserialised = crypto.dump_json(json.loads(raw_object)).encode()
    signature = crypto.open_answer(body.encode(), "alipay.trade.query").sign
    assert signature is not None
    assert not crypto.rsa2_verify(ALIPAY_PUBLIC, reserialised, signature)


def test_sign_may_come_first_and_other_members_are_ignored() -> None:
    raw_object = '{"code":"10000","msg":"Success"}'
    sign = crypto.rsa2_sign(ALIPAY_KEY, raw_object.encode())
    body = f'{{"sign":"{sign}","alipay_cert_sn":"abc","alipay_trade_close_response":{raw_object}}}'
    assert answers.read_reply(answer(body), "alipay.trade.close", ALIPAY_PUBLIC).ok


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"alipay_trade_query_response":{"code":"10000"}} trailing',
        b'{"alipay_trade_query_response":{"code":"10000"},"alipay_trade_query_response":{}}',
        b'{"alipay_trade_query_response":"10000","sign":"x"}',
        b'{"other_response":{"code":"10000"},"sign":"x"}',
        b"\xff\xfe",
        b"<html>502 Bad Gateway</html>",
    ],
)
def test_malformed_answers_are_unknown(body: bytes) -> None:
    with pytest.raises(ChannelOutcomeUnknown):
        answers.read_reply(answer(body), "alipay.trade.query", ALIPAY_PUBLIC)


def test_unsigned_or_forged_answers_are_unknown() -> None:
    raw_object = '{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS"}'
    with pytest.raises(ChannelOutcomeUnknown, match="unsigned"):
        answers.read_reply(
            answer(f'{{"alipay_trade_query_response":{raw_object}}}'),
            "alipay.trade.query",
            ALIPAY_PUBLIC,
        )
    forged = signed_body("alipay_trade_query_response", raw_object, key=APP_KEY)
    with pytest.raises(ChannelOutcomeUnknown, match="does not verify"):
        answers.read_reply(answer(forged), "alipay.trade.query", ALIPAY_PUBLIC)
    tampered = signed_body("alipay_trade_query_response", raw_object).replace("SUCCESS", "CLOSED")
    with pytest.raises(ChannelOutcomeUnknown):
        answers.read_reply(answer(tampered), "alipay.trade.query", ALIPAY_PUBLIC)


def test_unsigned_gateway_error_is_unknown_and_says_what_it_was() -> None:
    body = (
        '{"error_response":{"code":"40002","msg":"Invalid Arguments",'
        '"sub_code":"isv.invalid-app-id"}}'
    )
    with pytest.raises(ChannelOutcomeUnknown, match=r"40002 isv\.invalid-app-id"):
        answers.read_reply(answer(body), "alipay.trade.query", ALIPAY_PUBLIC)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, ChannelUnavailable),
        (429, ChannelUnavailable),
        (502, ChannelOutcomeUnknown),
        (500, ChannelOutcomeUnknown),
    ],
)
def test_http_status(status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        answers.read_reply(answer(b"busy", status), "alipay.trade.query", ALIPAY_PUBLIC)


# Amounts and times


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (99, "0.99"),
        (100, "1.00"),
        (1999, "19.99"),
        (10_000_000_000, "100000000.00"),
        (123456789012345, "1234567890123.45"),
    ],
)
def test_fen_to_yuan(fen: int, yuan: str) -> None:
    assert fen_to_yuan(fen) == yuan
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize(("text", "fen"), [("20", 2000), ("20.5", 2050), ("0.5", 50), ("0", 0)])
def test_yuan_to_fen_reads_fewer_decimals(text: str, fen: int) -> None:
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1.00",
        "1.00 ",
        "-1.00",
        "+1.00",
        "1.001",
        "1.",
        ".5",
        "01.00",
        "1e2",
        "1,00",
        "NaN",
        "inf",
        "１.００",
        "0x10",
        "1_000.00",
        "19.990",
    ],
)
def test_malformed_yuan_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        yuan_to_fen(text)


def test_fen_to_yuan_refuses_what_is_not_an_amount() -> None:
    with pytest.raises(ValueError, match="negative"):
        fen_to_yuan(-1)
    with pytest.raises(TypeError):
        fen_to_yuan(True)
    with pytest.raises(TypeError):
        fen_to_yuan(19.99)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**15))
def test_yuan_round_trip(fen: int) -> None:
    yuan = fen_to_yuan(fen)
    assert yuan_to_fen(yuan) == fen
    whole, _, decimals = yuan.partition(".")
    assert len(decimals) == 2
    assert int(whole) * 100 + int(decimals) == fen


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_yuan_to_fen_is_exact(value: Any) -> None:
    text = format(value, "f")
    assert yuan_to_fen(text) == int(value * 100)


def test_times_are_beijing() -> None:
    assert wire.format_time(MOMENT) == "2024-01-15 10:30:00"
    assert wire.parse_time("2024-01-15 10:30:00") == MOMENT
    refund_time = wire.parse_time("2024-01-15 10:30:00.320")
    assert refund_time.microsecond == 320_000
    with pytest.raises(ValueError, match="timezone-aware"):
        wire.format_time(datetime(2024, 1, 15))
    for bad in ("2024-01-15T10:30:00", "2024-01-15 10:30", "2024-13-15 10:30:00", ""):
        with pytest.raises(ValueError, match="is not"):
            wire.parse_time(bad)


# Create requests


def test_create_biz_per_method() -> None:
    expires = datetime(2024, 1, 15, 3, 0, tzinfo=UTC)
    assert requests.create_biz(order("qr", expires_at=expires)) == (
        "alipay.trade.precreate",
        {
            "out_trade_no": "pay_A1001",
            "total_amount": "19.99",
            "subject": "T恤",
            "product_code": "FACE_TO_FACE_PAYMENT",
            "time_expire": "2024-01-15 11:00:00",
        },
    )
    assert requests.create_biz(order("web"))[1]["product_code"] == "FAST_INSTANT_TRADE_PAY"
    assert requests.create_biz(order("h5"))[1]["product_code"] == "QUICK_WAP_WAY"
    assert requests.create_biz(order("app"))[1]["product_code"] == "QUICK_MSECURITY_PAY"
    jsapi = requests.create_biz(order("jsapi", payer_id="2088102146225135"))
    assert jsapi[0] == "alipay.trade.create"
    assert jsapi[1]["buyer_id"] == "2088102146225135"
    barcode = requests.create_biz(order("barcode", auth_code="286648488111111111"))
    assert barcode[0] == "alipay.trade.pay"
    assert barcode[1]["scene"] == "bar_code"
    assert barcode[1]["auth_code"] == "286648488111111111"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"method": "jsapi"}, "PARAM_MISSING"),
        ({"method": "barcode"}, "PARAM_MISSING"),
        ({"currency": "USD"}, "CURRENCY"),
        ({"expires_at": datetime(2024, 1, 15, 11)}, "PARAM_ERROR"),
    ],
)
def test_create_refuses_what_alipay_cannot_take(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(ChannelRejected) as caught:
        requests.create_biz(order(**changes))
    assert caught.value.code == code
    assert caught.value.fault == "request"


def test_long_descriptions_are_cut_to_alipays_subject_limit() -> None:
    assert len(requests.create_biz(order(description="x" * 300))[1]["subject"]) == 256


# Replies


@pytest.mark.parametrize(
    ("payload", "error", "fault"),
    [
        (
            {
                "code": "20000",
                "msg": "Service Currently Unavailable",
                "sub_code": "isp.unknow-error",
            },
            ChannelOutcomeUnknown,
            None,
        ),
        (
            {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SYSTEM_ERROR"},
            ChannelOutcomeUnknown,
            None,
        ),
        (
            {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_HAS_SUCCESS"},
            ChannelRejected,
            "request",
        ),
        (
            {
                "code": "40004",
                "msg": "Business Failed",
                "sub_code": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
            },
            ChannelRejected,
            "request",
        ),
        (
            {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.BUYER_BALANCE_NOT_ENOUGH"},
            ChannelRejected,
            "buyer",
        ),
        (
            {
                "code": "40004",
                "msg": "Business Failed",
                "sub_code": "ACQ.PAYMENT_AUTH_CODE_INVALID",
            },
            ChannelRejected,
            "buyer",
        ),
        (
            {
                "code": "40004",
                "msg": "Business Failed",
                "sub_code": "ACQ.SELLER_BALANCE_NOT_ENOUGH",
            },
            ChannelRejected,
            "channel",
        ),
        (
            {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"},
            ChannelRejected,
            "channel",
        ),
        (
            {
                "code": "40001",
                "msg": "Missing Required Arguments",
                "sub_code": "isv.missing-method",
            },
            ChannelRejected,
            "request",
        ),
        (
            {
                "code": "40006",
                "msg": "Insufficient Permissions",
                "sub_code": "isv.insufficient-isv-permissions",
            },
            ChannelRejected,
            "channel",
        ),
    ],
)
def test_reply_errors(payload: dict[str, str], error: type[Exception], fault: str | None) -> None:
    reply = reply_for("alipay.trade.precreate", payload)
    exc = codes.reply_error(reply)
    assert type(exc) is error
    assert exc.code == payload["sub_code"]
    if fault is not None:
        assert exc.fault == fault
    with pytest.raises(error):
        answers.parse_create_answer("qr", reply, "pay_A1001")


def test_barcode_replies() -> None:
    paid = reply_for(
        "alipay.trade.pay",
        {
            "code": "10000",
            "msg": "Success",
            "out_trade_no": "pay_A1001",
            "trade_no": "2024T1",
            "total_amount": "19.99",
            "gmt_payment": "2024-01-15 10:31:02",
        },
    )
    result = answers.parse_create_answer("barcode", paid, "pay_A1001")
    assert result.state is TradeState.SUCCEEDED
    assert result.channel_trade_no == "2024T1"
    assert result.paid_at == datetime(2024, 1, 15, 2, 31, 2, tzinfo=UTC)
    waiting = reply_for(
        "alipay.trade.pay",
        {
            "code": "10003",
            "msg": "order success pay inprocess",
            "out_trade_no": "pay_A1001",
            "trade_no": "2024T1",
        },
    )
    result = answers.parse_create_answer("barcode", waiting, "pay_A1001")
    assert result.state is TradeState.PENDING
    assert result.action.type == "none"
    with pytest.raises(ChannelOutcomeUnknown, match="another order"):
        answers.parse_create_answer("barcode", paid, "pay_B2002")


def test_query_replies() -> None:
    missing = reply_for(
        "alipay.trade.query",
        {
            "code": "40004",
            "msg": "Business Failed",
            "sub_code": "ACQ.TRADE_NOT_EXIST",
            "sub_msg": "交易不存在",
        },
    )
    assert answers.parse_query_answer(missing, "pay_A1001").state is TradeState.NOT_FOUND
    base = {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": "pay_A1001",
        "trade_no": "T",
        "total_amount": "19.99",
    }
    for status, state in [
        ("WAIT_BUYER_PAY", TradeState.PENDING),
        ("TRADE_SUCCESS", TradeState.SUCCEEDED),
        ("TRADE_FINISHED", TradeState.SUCCEEDED),
        ("TRADE_CLOSED", TradeState.CLOSED),
    ]:
        trade = answers.parse_query_answer(
            reply_for("alipay.trade.query", {**base, "trade_status": status}), "pay_A1001"
        )
        assert trade.state is state
        assert trade.channel_state == status
        assert trade.amount == 1999
    refunded = reply_for(
        "alipay.trade.query",
        {**base, "trade_status": "TRADE_CLOSED", "send_pay_date": "2024-01-15 10:31:02"},
    )
    assert answers.parse_query_answer(refunded, "pay_A1001").state is TradeState.SUCCEEDED, (
        "a trade closed by a full refund was paid"
    )
    for bad in (
        {"trade_status": "BOGUS"},
        {"trade_status": "TRADE_SUCCESS", "total_amount": "19.9x"},
    ):
        with pytest.raises(ChannelOutcomeUnknown):
            answers.parse_query_answer(
                reply_for("alipay.trade.query", {**base, **bad}), "pay_A1001"
            )


def test_close_replies() -> None:
    answers.parse_close_answer(reply_for("alipay.trade.close", {"code": "10000", "msg": "Success"}))
    answers.parse_close_answer(
        reply_for(
            "alipay.trade.close",
            {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"},
        )
    )
    with pytest.raises(ChannelRejected):
        answers.parse_close_answer(
            reply_for(
                "alipay.trade.close",
                {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"},
            )
        )


REFUND = RefundOrder(
    refund_no="re_R1",
    created_at=MOMENT,
    payment=OrderRef("pay_A1001", MOMENT),
    amount=500,
    total=1999,
    currency="CNY",
    notify_url="https://merchant.example/notify",
    reason="尺码不合适",
)


def test_refund_biz_and_replies() -> None:
    assert requests.refund_biz(REFUND) == {
        "out_trade_no": "pay_A1001",
        "refund_amount": "5.00",
        "out_request_no": "re_R1",
        "refund_reason": "尺码不合适",
    }
    moved = reply_for(
        "alipay.trade.refund",
        {
            "code": "10000",
            "msg": "Success",
            "out_trade_no": "pay_A1001",
            "fund_change": "Y",
            "refund_fee": "5.00",
            "gmt_refund_pay": "2024-01-15 10:40:00",
        },
    )
    status = answers.parse_refund_answer(moved, REFUND)
    assert status is not None
    assert status.state is RefundState.SUCCEEDED
    assert status.amount == 500
    repeat = reply_for(
        "alipay.trade.refund",
        {"code": "10000", "msg": "Success", "out_trade_no": "pay_A1001", "fund_change": "N"},
    )
    assert answers.parse_refund_answer(repeat, REFUND) is None, "a repeat is confirmed by query"


def test_refund_query_replies() -> None:
    absent = reply_for("alipay.trade.fastpay.refund.query", {"code": "10000", "msg": "Success"})
    assert answers.parse_refund_query_answer(absent, REFUND).state is RefundState.NOT_FOUND
    done = reply_for(
        "alipay.trade.fastpay.refund.query",
        {
            "code": "10000",
            "msg": "Success",
            "out_trade_no": "pay_A1001",
            "out_request_no": "re_R1",
            "refund_amount": "5.00",
            "total_amount": "19.99",
            "refund_status": "REFUND_SUCCESS",
            "gmt_refund_pay": "2024-01-15 10:40:00",
        },
    )
    status = answers.parse_refund_query_answer(done, REFUND)
    assert status.state is RefundState.SUCCEEDED
    assert status.amount == 500
    assert status.refunded_at == datetime(2024, 1, 15, 2, 40, tzinfo=UTC)
    other = reply_for(
        "alipay.trade.fastpay.refund.query",
        {
            "code": "10000",
            "msg": "Success",
            "out_request_no": "re_OTHER",
            "refund_status": "REFUND_SUCCESS",
        },
    )
    with pytest.raises(ChannelOutcomeUnknown):
        answers.parse_refund_query_answer(other, REFUND)


# Notifications


def notification_body(**changes: str) -> bytes:
    fields = {**NOTIFY_FIELDS, **changes}
    return urlencode(crypto.sign_notification(ALIPAY_KEY, fields)).encode()


def test_notification_refusals() -> None:
    decode_notification(notification_body(), ALIPAY_PUBLIC, "2021000000000001")
    tampered = notification_body().replace(b"19.99", b"0.01")
    with pytest.raises(crypto.VerificationError) as caught:
        decode_notification(tampered, ALIPAY_PUBLIC, "2021000000000001")
    assert caught.value.reason == "signature"
    with pytest.raises(crypto.VerificationError) as caught:
        decode_notification(notification_body(), ALIPAY_PUBLIC, "2021000000000002")
    assert caught.value.reason == "account"
    unsigned = urlencode(NOTIFY_FIELDS).encode()
    with pytest.raises(crypto.VerificationError, match="no sign"):
        decode_notification(unsigned, ALIPAY_PUBLIC, "2021000000000001")
    rsa1 = notification_body().replace(b"sign_type=RSA2", b"sign_type=RSA")
    with pytest.raises(crypto.VerificationError, match="sign_type"):
        decode_notification(rsa1, ALIPAY_PUBLIC, "2021000000000001")
    for broken in (b"\xff=1", b"a=1&a=2", b"novalue"):
        with pytest.raises(crypto.VerificationError) as caught:
            parse_form(broken)
        assert caught.value.reason == "malformed"


def test_refund_notification() -> None:
    body = notification_body(
        trade_status="TRADE_CLOSED",
        out_biz_no="re_R1",
        refund_fee="19.99",
        gmt_refund="2024-01-15 10:40:00.320",
        gmt_close="2024-01-15 10:40:00",
    )
    note = decode_notification(body, ALIPAY_PUBLIC, "2021000000000001")
    assert note.trade is not None
    assert note.trade.state is TradeState.SUCCEEDED, "paid, then fully refunded"
    assert note.trade.channel_state == "TRADE_CLOSED"
    assert note.refund is not None
    assert note.refund.refund_no == "re_R1"
    assert note.refund.state is RefundState.SUCCEEDED
    assert note.refund.order_no == "pay_A1001"
