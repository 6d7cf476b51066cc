"""UnionPay ACP 5.1.0 protocol code without I/O: signatures, certificates, fields, answers."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from channels.base import RefundState, TradeState
from channels.errors import (
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    NotificationRejected,
)
from channels.http import HttpAnswer
from channels.unionpay import crypto
from channels.unionpay.crypto import ChainVerifier, VerificationError
from channels.unionpay.notification import parse_notification
from channels.unionpay.protocol import answers, codes, requests, wire
from channels.unionpay.sandbox import CHANNEL_CN, issue, subject_name
from tests.channels.unionpay.keys import MERCHANT_SERIAL, chain

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
MER_ID = "777290058110048"
QR_FIELDS = {
    "version": "5.1.0",
    "encoding": "UTF-8",
    "signMethod": "01",
    "txnType": "01",
    "txnSubType": "07",
    "bizType": "000000",
    "channelType": "08",
    "accessType": "0",
    "merId": MER_ID,
    "orderId": "payAbC123xyz",
    "txnTime": "20260102030405",
    "txnAmt": "1999",
    "currencyCode": "156",
    "backUrl": "https://merchant.example/notify",
    "certId": "73146921577",
}
QR_SIGNING_STRING = (
    "accessType=0&backUrl=https://merchant.example/notify&bizType=000000&certId=73146921577"
    "&channelType=08&currencyCode=156&encoding=UTF-8&merId=777290058110048"
    "&orderId=payAbC123xyz&signMethod=01&txnAmt=1999&txnSubType=07&txnTime=20260102030405"
    "&txnType=01&version=5.1.0"
)
QR_DIGEST = b"340be381adfcc6d1271157992be7fdc9eddf54e87be328de91c80258ed23cbcb"
QR_SIGNATURE = (
    "lZ6VdW3P54VLBtV7y6X8GDo5AHYRVBQGOjYPNfCqmzrIrbMMFiiVZ1blVgOeFCsO7n9MeMxDClOQdBRVR5oWJ11n"
    "z9RUJHIefGyP3d/u6JoAbUKiMLk0MFt6ZTEm0oYTUpJY1qdmAhSrdSnwENplkT1iBYfL2ykcQQhka1iS4fxdnwnx"
    "zM2ZQHMho/Ww0OpReo2U4q8CVWw0CW8jYIhHFPrwx5s+etl/BOHRLETx3L13o3FGsDCoLL/rc/HY5Gthg/j86guf"
    "u/IzEN5m5DTU3UOCga0gOq2tUWvbU96a0L6fp96YPSTCVoqJU/kmuu0UAcLrAyRB/WEkgzB6K3oInQ=="
)
ANSWER_SIGNATURE = (
    "G9G9ie9rqz7aKP2a711VGT0KONL4Po/a6311D0yq8+LjZb/cqgSuEJ/zhMh0t58cba/GXWTgbk+svOD39ZuAfh1T"
    "WgTFR8l+c92azOMZBe3XyRAESJ28tcLCv2Q8V43wjTZ1IGipNNviWOxSLyOZ/hJW4lDq8yMULJFEqkVmwtgU+zmf"
    "JJClbQKbQlIgijFgqh4vwsWx1pA9xGsjazgT9vH8+taCiw6Z7Ale6EcvU4f6FhYJlaKouNULpOeTwar4wKIMovOU"
    "SeP8e6i4dm9XMzwQfHU6aasa2PBQqn4ZxZAyGrM5p/CuE8n91k9hMqAIkjXYDXdZ7Xo4m2rygl2mjw=="
)


def verifier(owners: frozenset[str] = frozenset({crypto.TEST_OWNER})) -> ChainVerifier:
    return ChainVerifier(chain().root, chain().middle, owners)


def merchant() -> wire.Merchant:
    return wire.Merchant(MER_ID, str(MERCHANT_SERIAL), chain().merchant_key)


def channel_signed(fields: dict[str, str], cert: x509.Certificate | None = None) -> dict[str, str]:
    """`fields` signed as the simulator signs answers and notifications."""
    out = {**fields, "signPubKeyCert": crypto.certificate_pem(cert or chain().channel)}
    out["signature"] = crypto.sign(out, chain().channel_key)
    return out


def answer(fields: dict[str, str], status: int = 200) -> HttpAnswer:
    body = wire.encode_answer(channel_signed(fields))
    return HttpAnswer.build(status, {"Content-Type": "text/plain"}, body)


# Signatures


def test_signing_string_and_digest_are_exact() -> None:
    assert crypto.signing_string({**QR_FIELDS, "signature": "ignored"}) == QR_SIGNING_STRING
    assert crypto.signing_digest(QR_FIELDS) == QR_DIGEST


def test_request_signature_vector() -> None:
    """PKCS#1 v1.5 is deterministic: the same fields and key give the same signature."""
    assert crypto.sign(QR_FIELDS, chain().merchant_key) == QR_SIGNATURE
    signed = wire.signed(merchant(), {k: v for k, v in QR_FIELDS.items() if k != "certId"})
    assert signed["certId"] == "73146921577"
    assert signed["signature"] == QR_SIGNATURE


def test_answer_signature_covers_the_certificate() -> None:
    fields = {
        "respCode": "00",
        "respMsg": "成功[0000000]",
        "orderId": "payAbC123xyz",
        "qrCode": "https://qr.95516.com/00010000/1",
    }
    signed = channel_signed(fields)
    assert signed["signature"] == ANSWER_SIGNATURE
    assert crypto.verify_signed(signed, verifier(), NOW) == chain().channel


@pytest.mark.parametrize(
    "change",
    [
        {"txnAmt": "1"},
        {"respMsg": "changed"},
        {"signature": "not base64!"},
        {"signature": ""},
        {"extra": "field"},
    ],
)
def test_tampered_messages_are_refused(change: dict[str, str]) -> None:
    signed = channel_signed({"respCode": "00", "respMsg": "ok", "txnAmt": "1999"})
    with pytest.raises(VerificationError) as caught:
        crypto.verify_signed({**signed, **change}, verifier(), NOW)
    assert caught.value.reason == "signature"


# Certificate chain


def _leaf(
    *,
    issuer: x509.Certificate | None = None,
    issuer_key: object = None,
    not_before: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2125, 1, 1, tzinfo=UTC),
    common_name: str = CHANNEL_CN,
    ca: bool = False,
) -> x509.Certificate:
    issuer_cert = issuer or chain().middle
    key = issuer_key or chain().middle_key
    return issue(
        subject=subject_name(common_name, "Signing"),
        key=chain().channel_key.public_key(),
        issuer=issuer_cert.subject,
        issuer_key=key,  # type: ignore[arg-type]
        ca=ca,
        not_before=not_before,
        not_after=not_after,
    )


def test_the_channel_certificate_chains_to_the_configured_root() -> None:
    crypto.verify_chain(chain().channel, chain().middle, chain().root, NOW, {crypto.TEST_OWNER})


def test_a_certificate_from_another_root_is_refused() -> None:
    """Same names as the real chain, other keys: only signatures tell them apart."""
    impostor_root = issue(
        subject=chain().root.subject,
        key=chain().merchant_key.public_key(),
        issuer=chain().root.subject,
        issuer_key=chain().merchant_key,
        ca=True,
        not_before=datetime(2025, 1, 1, tzinfo=UTC),
        not_after=datetime(2125, 1, 1, tzinfo=UTC),
    )
    impostor_middle = issue(
        subject=chain().middle.subject,
        key=chain().merchant_key.public_key(),
        issuer=impostor_root.subject,
        issuer_key=chain().merchant_key,
        ca=True,
        not_before=datetime(2025, 1, 1, tzinfo=UTC),
        not_after=datetime(2125, 1, 1, tzinfo=UTC),
        path_length=0,
    )
    leaf = _leaf(issuer=impostor_middle, issuer_key=chain().merchant_key)
    with pytest.raises(VerificationError, match="not issued by the middle"):
        crypto.verify_chain(leaf, chain().middle, chain().root, NOW, {crypto.TEST_OWNER})
    # Trusting the impostor's middle does not help either: it does not chain to our root.
    with pytest.raises(VerificationError, match="middle certificate is not issued by the root"):
        crypto.verify_chain(leaf, impostor_middle, chain().root, NOW, {crypto.TEST_OWNER})


@pytest.mark.parametrize(
    ("not_before", "not_after", "problem"),
    [
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC), "expired"),
        (datetime(2027, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC), "not yet valid"),
    ],
)
def test_a_certificate_outside_its_validity_is_refused(
    not_before: datetime, not_after: datetime, problem: str
) -> None:
    leaf = _leaf(not_before=not_before, not_after=not_after)
    signed = channel_signed({"respCode": "00"}, leaf)
    with pytest.raises(VerificationError, match=problem):
        crypto.verify_signed(signed, verifier(), NOW)


def test_validity_is_checked_on_every_use() -> None:
    leaf = _leaf(not_after=NOW + timedelta(days=1))
    check = verifier()
    pem = crypto.certificate_pem(leaf)
    check.verify_pem(pem, NOW)
    with pytest.raises(VerificationError, match="expired"):
        check.verify_pem(pem, NOW + timedelta(days=2))


def test_a_ca_leaf_and_a_foreign_owner_are_refused() -> None:
    with pytest.raises(VerificationError, match="CA certificate"):
        crypto.verify_chain(_leaf(ca=True), chain().middle, chain().root, NOW, {crypto.TEST_OWNER})
    other = _leaf(common_name="041@Z12@Someone Else Ltd@00000062")
    with pytest.raises(VerificationError, match="Someone Else"):
        crypto.verify_chain(other, chain().middle, chain().root, NOW, {crypto.TEST_OWNER})


def test_live_accounts_trust_only_unionpay_production_certificates() -> None:
    live = verifier(frozenset({crypto.UNIONPAY_OWNER}))
    with pytest.raises(VerificationError, match="00040000:SIGN"):
        crypto.verify_signed(channel_signed({"respCode": "00"}), live, NOW)
    production = _leaf(common_name=f"041@Z12@{crypto.UNIONPAY_OWNER}@00000062")
    crypto.verify_signed(channel_signed({"respCode": "00"}, production), live, NOW)


def test_missing_or_garbled_certificates_are_refused() -> None:
    signed = channel_signed({"respCode": "00"})
    with pytest.raises(VerificationError, match="no signPubKeyCert"):
        crypto.verify_signed(
            {k: v for k, v in signed.items() if k != "signPubKeyCert"}, verifier(), NOW
        )
    with pytest.raises(VerificationError, match="not a PEM certificate"):
        crypto.verify_signed({**signed, "signPubKeyCert": "-----BEGIN"}, verifier(), NOW)


def test_cert_id_is_the_decimal_serial() -> None:
    assert crypto.cert_id(chain().merchant) == "73146921577"
    assert crypto.owner(chain().channel) == crypto.TEST_OWNER


# Order ids and times


def _router_ids() -> list[str]:
    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits
    ids = ["pay_" + "Z" * 37, "re_" + "9" * 37, "pay_00000", "re_payABC"]
    for _ in range(200):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(6, 37)))
        ids.append(f"{rng.choice(['pay', 're'])}_{body}")
    return ids


def _plain_ids() -> list[str]:
    """Ids that already are letters and digits, some starting like mapped ones."""
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits
    ids = ["A1001xyz", "pay0123456789abcdef", "ref0123456789abcdef", "vdpayAbC12", "XpayAbC12"]
    for _ in range(200):
        head = rng.choice(["", "pay", "re", "vd", "X", "x", "p"])
        ids.append(head + "".join(rng.choice(alphabet) for _ in range(rng.randint(8, 36))))
    return ids


def test_order_id_mapping_round_trips() -> None:
    for router_id in _router_ids():
        order_id = wire.to_order_id(router_id)
        assert wire.ORDER_ID.fullmatch(order_id), router_id
        assert order_id == router_id.replace("_", "")
        assert wire.from_order_id(order_id) == router_id
        if router_id.startswith("pay_"):
            void = wire.void_order_id(router_id)
            assert wire.ORDER_ID.fullmatch(void) and void != order_id


def test_plain_ids_pass_and_the_mapping_stays_one_to_one() -> None:
    assert wire.to_order_id("A1001xyz") == "A1001xyz"
    assert wire.to_order_id("pay0123456789abcdef") == "Xpay0123456789abcdef"
    assert wire.to_order_id("ref0123456789abcdef") == "Xref0123456789abcdef"
    numbers = _router_ids() + _plain_ids()
    order_ids = {wire.to_order_id(number): number for number in numbers}
    assert len(order_ids) == len(set(numbers))
    for order_id, number in order_ids.items():
        assert wire.ORDER_ID.fullmatch(order_id), number
        assert wire.from_order_id(order_id) == number
    # A void's orderId is never a payment's or a refund's.
    assert {wire.void_order_id(number) for number in numbers}.isdisjoint(order_ids)


@pytest.mark.parametrize(
    "order_no",
    ["pay_", "pay_ab", "pay_a-b12345", "evt_abcdefgh", "pay_" + "x" * 40, "payabc", "A1001"],
)
def test_ids_without_a_valid_order_id_are_refused(order_no: str) -> None:
    with pytest.raises(wire.WireError):
        wire.to_order_id(order_no)


@pytest.mark.parametrize("order_id", ["vdpayAbcdefg", "XA1001xyz", "pay", "pay_abcdefg"])
def test_foreign_order_ids_do_not_map_back(order_id: str) -> None:
    with pytest.raises(wire.WireError):
        wire.from_order_id(order_id)


def test_txn_time_is_beijing_time() -> None:
    assert wire.format_txn_time(datetime(2025, 12, 31, 16, 30, 1, tzinfo=UTC)) == "20260101003001"
    assert wire.parse_txn_time("20260101003001") == datetime(2025, 12, 31, 16, 30, 1, tzinfo=UTC)
    with pytest.raises(wire.WireError):
        wire.format_txn_time(datetime(2026, 1, 1))
    for bad in ("2026010100300", "20261301000000", "2026010100300x"):
        with pytest.raises(wire.WireError):
            wire.parse_txn_time(bad)


# Wire formats


def test_answers_are_raw_pairs_split_only_at_the_top_level() -> None:
    pem = crypto.certificate_pem(chain().channel)
    body = (
        "respCode=00&signature=ab+c/d==&signPubKeyCert=" + pem
        + "&reserved={a=1&b=[x&y]}&respMsg=成功"
    ).encode()  # fmt: skip
    fields = wire.decode_answer(body)
    assert fields == {
        "respCode": "00",
        "signature": "ab+c/d==",
        "signPubKeyCert": pem,
        "reserved": "{a=1&b=[x&y]}",
        "respMsg": "成功",
    }
    assert wire.decode_answer(wire.encode_answer(fields)) == fields


@pytest.mark.parametrize("body", [b"\xff", b"novalue", b"a=1&a=2", b"=1"])
def test_unreadable_answers(body: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_answer(body)


def test_forms_round_trip_and_refuse_repeated_fields() -> None:
    fields = {"signature": "a+b/c==", "backUrl": "https://m.example/n?x=1&y=2", "respMsg": "成功"}
    assert wire.decode_form(wire.encode_form(fields)) == fields
    with pytest.raises(wire.WireError):
        wire.decode_form(b"a=1&a=2")


# Requests


def _consume(method: str, **changes: object) -> requests.Consume:
    values: dict[str, object] = {
        "method": method,
        "order_no": "pay_AbC123xyz",
        "created_at": NOW,
        "amount": 1999,
        "currency": "CNY",
        "back_url": "https://merchant.example/notify",
        "front_url": "https://merchant.example/return",
        "expires_at": NOW + timedelta(minutes=30),
        "qr_no": "6212345678901234567",
    }
    values.update(changes)
    return requests.Consume(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "sub_type", "biz_type", "channel_type"),
    [
        ("web", requests.FRONT_PATH, "01", "000201", "07"),
        ("h5", requests.FRONT_PATH, "01", "000201", "08"),
        ("app", requests.APP_PATH, "01", "000201", "08"),
        ("qr", requests.BACK_PATH, "07", "000000", "08"),
        ("barcode", requests.BACK_PATH, "06", "000000", "08"),
    ],
)
def test_consume_fields_per_method(
    method: str, path: str, sub_type: str, biz_type: str, channel_type: str
) -> None:
    fields = requests.consume_fields(merchant(), _consume(method))
    assert requests.PRODUCTS[method].path == path  # type: ignore[index]
    expected = {"txnType": "01", "txnSubType": sub_type, "bizType": biz_type}
    expected |= {"channelType": channel_type, "accessType": "0", "version": "5.1.0"}
    expected |= {"orderId": "payAbC123xyz", "txnTime": "20260102110405", "txnAmt": "1999"}
    expected |= {"currencyCode": "156", "payTimeout": "20260102113405", "certId": "73146921577"}
    assert expected.items() <= fields.items()
    assert ("frontUrl" in fields) == (path == requests.FRONT_PATH)
    assert ("qrNo" in fields) == (method == "barcode")
    crypto.verify(fields, crypto.public_key(chain().merchant))


@pytest.mark.parametrize(
    ("method", "changes"),
    [
        ("jsapi", {}),
        ("barcode", {"qr_no": None}),
        ("qr", {"currency": "USD"}),
        ("qr", {"amount": 0}),
        ("qr", {"order_no": "order-1"}),
        ("qr", {"created_at": datetime(2026, 1, 1)}),
    ],
)
def test_requests_the_channel_cannot_take_are_refused_before_sending(
    method: str, changes: dict[str, object]
) -> None:
    with pytest.raises(ChannelRejected) as caught:
        requests.consume_fields(merchant(), _consume(method, **changes))
    assert caught.value.fault == "request"


def test_refund_and_void_name_the_original() -> None:
    original = requests.Original("pay_AbC123xyz", NOW, "202601021104051234567")
    refund = requests.refund_fields(
        merchant(),
        refund_no="re_XyZ98765",
        created_at=NOW + timedelta(hours=1),
        original=original,
        amount=500,
        currency="CNY",
        back_url="https://merchant.example/notify",
    )
    assert refund["origQryId"] == "202601021104051234567"
    assert (refund["txnType"], refund["orderId"], refund["txnAmt"]) == ("04", "reXyZ98765", "500")
    assert "origOrderId" not in refund
    unpaid = requests.Original("pay_AbC123xyz", NOW)
    void = requests.void_fields(merchant(), unpaid, None, NOW + timedelta(minutes=5))
    assert (void["txnType"], void["orderId"]) == ("31", "vdpayAbC123xyz")
    assert (void["origOrderId"], void["origTxnTime"]) == ("payAbC123xyz", "20260102110405")
    assert "txnAmt" not in void and "backUrl" not in void


def test_query_fields() -> None:
    fields = requests.query_fields(merchant(), "pay_AbC123xyz", NOW)
    assert (fields["txnType"], fields["txnSubType"]) == ("00", "00")
    assert (fields["orderId"], fields["txnTime"]) == ("payAbC123xyz", "20260102110405")


# Answers

SENT = {"merId": MER_ID, "orderId": "payAbC123xyz", "txnTime": "20260102110405"}


def test_answers_must_verify_and_match_the_request() -> None:
    good = answer({**SENT, "respCode": "00", "qrCode": "q"})
    assert answers.read_answer(good, verifier(), NOW, SENT)["qrCode"] == "q"
    other = answer({**SENT, "orderId": "payOther123", "respCode": "00"})
    with pytest.raises(ChannelOutcomeUnknown, match="another orderId"):
        answers.read_answer(other, verifier(), NOW, SENT)
    unsigned = HttpAnswer.build(200, {}, wire.encode_answer({**SENT, "respCode": "00"}))
    with pytest.raises(ChannelOutcomeUnknown) as caught:
        answers.read_answer(unsigned, verifier(), NOW, SENT)
    assert caught.value.code == "ANSWER_SIGNATURE"
    tampered = HttpAnswer.build(200, {}, good.body.replace(b"qrCode=q", b"qrCode=z"))
    with pytest.raises(ChannelOutcomeUnknown):
        answers.read_answer(tampered, verifier(), NOW, SENT)


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, ChannelUnavailable), (429, ChannelUnavailable), (500, ChannelOutcomeUnknown)],
)
def test_http_failures(status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        answers.read_answer(HttpAnswer.build(status, {}, b"busy"), verifier(), NOW, SENT)


@pytest.mark.parametrize(
    ("method", "code", "expected"),
    [
        ("barcode", "00", TradeState.SUCCEEDED),
        ("barcode", "03", TradeState.PENDING),
        ("barcode", "04", TradeState.PENDING),
        ("barcode", "05", TradeState.PENDING),
        ("app", "05", ChannelOutcomeUnknown),
        ("qr", "03", ChannelOutcomeUnknown),
        ("qr", "06", ChannelUnavailable),
        ("qr", "11", ChannelRejected),
        ("barcode", "64", ChannelRejected),
    ],
)
def test_consume_answers(method: str, code: str, expected: object) -> None:
    fields = {"respCode": code, "respMsg": "", "queryId": "1", "tn": "t", "qrCode": "q"}
    if isinstance(expected, TradeState):
        assert answers.parse_create_answer(method, fields).state is expected  # type: ignore[arg-type]
        return
    with pytest.raises(expected) as caught:  # type: ignore[call-overload]
        answers.parse_create_answer(method, fields)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_rejections_say_whose_fault() -> None:
    assert codes.error_for("11", "", "payment").fault == "request"
    assert codes.error_for("64", "", "payment").fault == "buyer"
    assert codes.error_for("32", "", "payment").fault == "channel"
    assert isinstance(codes.error_for("37", "", "query"), ChannelUnavailable)


def test_app_and_qr_answers_become_actions() -> None:
    app = answers.parse_create_answer("app", {"respCode": "00", "tn": "201", "queryId": "9"})
    assert app.action.as_dict() == {"type": "app_params", "params": {"tn": "201"}}
    assert app.channel_trade_no == "9"
    qr = answers.parse_create_answer("qr", {"respCode": "00", "qrCode": "https://qr/1"})
    assert qr.action.as_dict() == {"type": "qr_code", "qr_code": "https://qr/1"}
    with pytest.raises(ChannelOutcomeUnknown, match="lacks tn"):
        answers.parse_create_answer("app", {"respCode": "00"})


@pytest.mark.parametrize(
    ("orig", "state"),
    [
        ("00", TradeState.SUCCEEDED),
        ("A6", TradeState.SUCCEEDED),
        ("03", TradeState.PENDING),
        ("04", TradeState.PENDING),
        ("05", TradeState.PENDING),
        ("45", TradeState.CLOSED),
        ("64", TradeState.FAILED),
        ("01", TradeState.FAILED),
    ],
)
def test_query_answer_reads_orig_resp_code(orig: str, state: TradeState) -> None:
    fields = {"respCode": "00", "origRespCode": orig, "queryId": "7", "txnAmt": "1999"}
    trade = answers.parse_query_answer({**fields, "merId": MER_ID}, "pay_AbC123xyz")
    assert (trade.state, trade.channel_state, trade.amount) == (state, orig, 1999)
    assert (trade.currency, trade.account_id, trade.channel_trade_no) == ("CNY", MER_ID, "7")


def test_query_answer_not_found_and_failed_queries() -> None:
    missing = answers.parse_query_answer({"respCode": "34"}, "pay_AbC123xyz")
    assert missing.state is TradeState.NOT_FOUND
    with pytest.raises(ChannelOutcomeUnknown):
        answers.parse_query_answer({"respCode": "03"}, "pay_AbC123xyz")
    with pytest.raises(ChannelOutcomeUnknown, match="origRespCode"):
        answers.parse_query_answer({"respCode": "00"}, "pay_AbC123xyz")
    with pytest.raises(ChannelOutcomeUnknown, match="txnAmt"):
        answers.parse_query_answer(
            {"respCode": "00", "origRespCode": "00", "txnAmt": "1.5"}, "pay_AbC123xyz"
        )


def test_refund_answers() -> None:
    accepted = answers.parse_refund_answer({"respCode": "00", "queryId": "8"}, "re_1", "pay_1")
    assert (accepted.state, accepted.channel_refund_no) == (RefundState.PENDING, "8")
    with pytest.raises(ChannelRejected) as caught:
        answers.parse_refund_answer({"respCode": "33"}, "re_1", "pay_1")
    assert (caught.value.code, caught.value.fault) == ("33", "request")
    done = {"respCode": "00", "origRespCode": "00", "txnAmt": "500"}
    status = answers.parse_refund_query_answer(done, "re_1", "pay_1")
    assert (status.state, status.amount) == (RefundState.SUCCEEDED, 500)
    missing = answers.parse_refund_query_answer({"respCode": "34"}, "re_1", "pay_1")
    assert missing.state is RefundState.NOT_FOUND


def test_void_answers() -> None:
    answers.parse_close_answer({"respCode": "00"})
    answers.parse_close_answer({"respCode": "45"})
    with pytest.raises(ChannelRejected):
        answers.parse_close_answer({"respCode": "35"})


# Notifications

PAID = {
    "txnType": "01",
    "txnSubType": "01",
    "merId": MER_ID,
    "orderId": "payAbC123xyz",
    "txnTime": "20260102110405",
    "txnAmt": "1999",
    "currencyCode": "156",
    "queryId": "202601021104051234567",
    "respCode": "00",
    "respMsg": "成功[0000000]",
}


def test_payment_notification() -> None:
    body = wire.encode_form(channel_signed(PAID))
    notification = parse_notification(body, verifier(), MER_ID, NOW)
    assert notification.notification_id == PAID["queryId"]
    assert notification.event_type == "consume"
    trade = notification.trade
    assert trade is not None
    assert (trade.order_no, trade.state, trade.amount) == (
        "pay_AbC123xyz",
        TradeState.SUCCEEDED,
        1999,
    )
    assert trade.channel_trade_no == PAID["queryId"]
    with_defects = parse_notification(
        wire.encode_form(channel_signed({**PAID, "respCode": "A6"})), verifier(), MER_ID, NOW
    )
    assert with_defects.trade is not None and with_defects.trade.state is TradeState.SUCCEEDED


def test_refund_notification() -> None:
    fields = {**PAID, "txnType": "04", "orderId": "reXyZ98765", "txnAmt": "500"}
    notification = parse_notification(
        wire.encode_form(channel_signed(fields)), verifier(), MER_ID, NOW
    )
    refund = notification.refund
    assert refund is not None and notification.trade is None
    assert (refund.refund_no, refund.state, refund.amount) == (
        "re_XyZ98765",
        RefundState.SUCCEEDED,
        500,
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (wire.encode_form({**PAID, "signature": "x"}), "certificate"),
        (b"%%%=\xff", "malformed"),
    ],
)
def test_unverifiable_notifications(body: bytes, reason: str) -> None:
    with pytest.raises(NotificationRejected) as caught:
        parse_notification(body, verifier(), MER_ID, NOW)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"merId": "777290058110099"}, "account"),
        ({"txnType": "31"}, "unsupported"),
        ({"orderId": "vdpayAbC123xyz"}, "malformed"),
        ({"txnAmt": "-1"}, "malformed"),
        ({"queryId": ""}, "malformed"),
    ],
)
def test_notifications_that_change_nothing(change: dict[str, str], reason: str) -> None:
    body = wire.encode_form(channel_signed({**PAID, **change}))
    with pytest.raises(NotificationRejected) as caught:
        parse_notification(body, verifier(), MER_ID, NOW)
    assert caught.value.reason == reason


def test_tampered_notification_is_rejected() -> None:
    body = wire.encode_form(channel_signed(PAID)).replace(b"txnAmt=1999", b"txnAmt=1")
    with pytest.raises(NotificationRejected) as caught:
        parse_notification(body, verifier(), MER_ID, NOW)
    assert caught.value.reason == "signature"
