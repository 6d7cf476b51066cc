"""UnionPay ACP 5.1.0 messages: build signed requests, read verified answers. No I/O.

Paths under the gateway: `frontTransReq.do` (the browser posts a signed form: PC `web`,
channelType 07, and WAP `h5`, 08), `appTransReq.do` (`app`: answers a `tn`), `backTransReq.do`
(server calls: QR code application, payment-code consume, refund, void) and `queryTrans.do`.

| method  | path              | txnType/SubType | bizType | channelType | buyer gets      |
|---------|-------------------|-----------------|---------|-------------|-----------------|
| web     | frontTransReq.do  | 01/01           | 000201  | 07          | form_post       |
| h5      | frontTransReq.do  | 01/01           | 000201  | 08          | form_post       |
| app     | appTransReq.do    | 01/01           | 000201  | 08          | app_params (tn) |
| qr      | backTransReq.do   | 01/07           | 000000  | 08          | qr_code         |
| barcode | backTransReq.do   | 01/06 + qrNo    | 000000  | 08          | none            |

Refund is 04/00 and void 31/00 on `backTransReq.do`, naming the payment by `origQryId` (its
`queryId`) or, when that is not known yet, by `origOrderId` + `origTxnTime`. Query is 00/00 by
`orderId` + `txnTime`. Every request carries `certId` and `signature` (`channels.unionpay.crypto`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.base import (
    Action,
    CreateResult,
    Method,
    RefundState,
    RefundStatus,
    TradeState,
    TradeStatus,
)
from channels.errors import ChannelOutcomeUnknown, ChannelRejected, ChannelUnavailable
from channels.http import HttpAnswer, HttpRequest
from channels.unionpay import codes, wire
from channels.unionpay.crypto import ChainVerifier, VerificationError, sign, verify_signed

VERSION = "5.1.0"
ENCODING = "UTF-8"
SIGN_METHOD = "01"
ACCESS_TYPE = "0"
USER_AGENT = "payrouter-unionpay/0.1"

FRONT_PATH = "/gateway/api/frontTransReq.do"
BACK_PATH = "/gateway/api/backTransReq.do"
QUERY_PATH = "/gateway/api/queryTrans.do"
APP_PATH = "/gateway/api/appTransReq.do"

BIZ_GATEWAY = "000201"
BIZ_QR = "000000"
CHANNEL_PC = "07"
CHANNEL_MOBILE = "08"
TERMINAL_ID = "00000001"
"""`termId` for payment-code consumes: the router acts as one virtual terminal."""


@dataclass(frozen=True)
class Product:
    """How one of our methods is asked for at UnionPay."""

    path: str
    txn_sub_type: str
    biz_type: str
    channel_type: str


PRODUCTS: Mapping[Method, Product] = {
    "web": Product(FRONT_PATH, "01", BIZ_GATEWAY, CHANNEL_PC),
    "h5": Product(FRONT_PATH, "01", BIZ_GATEWAY, CHANNEL_MOBILE),
    "app": Product(APP_PATH, "01", BIZ_GATEWAY, CHANNEL_MOBILE),
    "qr": Product(BACK_PATH, "07", BIZ_QR, CHANNEL_MOBILE),
    "barcode": Product(BACK_PATH, "06", BIZ_QR, CHANNEL_MOBILE),
}


@dataclass(frozen=True)
class Merchant:
    """Who signs requests: the merchant id, its certificate's `certId` and its key."""

    mer_id: str
    cert_id: str
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class Consume:
    """A payment in UnionPay's terms (see `channels.base.CreateOrder`)."""

    method: Method
    order_no: str
    created_at: datetime
    amount: int
    currency: str
    back_url: str
    front_url: str | None = None
    expires_at: datetime | None = None
    qr_no: str | None = None


def _invalid(message: str) -> ChannelRejected:
    return ChannelRejected(message, code="PARAM_ERROR", fault="request")


def base_fields(merchant: Merchant, txn_type: str, sub_type: str, biz_type: str) -> dict[str, str]:
    return {
        "version": VERSION,
        "encoding": ENCODING,
        "signMethod": SIGN_METHOD,
        "txnType": txn_type,
        "txnSubType": sub_type,
        "bizType": biz_type,
        "accessType": ACCESS_TYPE,
        "merId": merchant.mer_id,
    }


def signed(merchant: Merchant, fields: Mapping[str, str]) -> dict[str, str]:
    """`fields` with `certId` and `signature` added."""
    out = {**fields, "certId": merchant.cert_id}
    out["signature"] = sign(out, merchant.private_key)
    return out


def post(base_url: str, path: str, fields: Mapping[str, str]) -> HttpRequest:
    """A signed form posted to the gateway."""
    headers = {
        "Content-Type": f"application/x-www-form-urlencoded; charset={ENCODING}",
        "Accept": "*/*",
        "User-Agent": USER_AGENT,
    }
    return HttpRequest("POST", base_url.rstrip("/") + path, headers, wire.encode_form(fields))


def consume_fields(merchant: Merchant, consume: Consume) -> dict[str, str]:
    """The signed fields of a consume (txnType 01). Raises `ChannelRejected(fault="request")`."""
    product = PRODUCTS.get(consume.method)
    if product is None:
        raise ChannelRejected(
            f"UnionPay online payments have no {consume.method!r} method",
            code="UNSUPPORTED",
            fault="request",
        )
    try:
        fields = base_fields(merchant, "01", product.txn_sub_type, product.biz_type)
        fields["channelType"] = product.channel_type
        fields["orderId"] = wire.to_order_id(consume.order_no)
        fields["txnTime"] = wire.format_txn_time(consume.created_at)
        fields["txnAmt"] = str(consume.amount)
        fields["currencyCode"] = wire.currency_code(consume.currency)
        fields["backUrl"] = consume.back_url
        if consume.front_url and product.path == FRONT_PATH:
            fields["frontUrl"] = consume.front_url
        if consume.expires_at is not None:
            fields["payTimeout"] = wire.format_txn_time(consume.expires_at)
    except wire.WireError as exc:
        raise _invalid(str(exc)) from None
    if consume.amount < 1:
        raise _invalid("the amount must be at least 1 fen")
    if consume.method == "barcode":
        if not consume.qr_no:
            raise _invalid("auth_code is required for barcode payments")
        fields["qrNo"] = consume.qr_no
        fields["termId"] = TERMINAL_ID
    return signed(merchant, fields)


def query_fields(merchant: Merchant, order_no: str, created_at: datetime) -> dict[str, str]:
    """The signed fields of a status query (txnType 00) by orderId + txnTime."""
    fields = base_fields(merchant, "00", "00", BIZ_GATEWAY)
    try:
        fields["orderId"] = wire.to_order_id(order_no)
        fields["txnTime"] = wire.format_txn_time(created_at)
    except wire.WireError as exc:
        raise _invalid(str(exc)) from None
    return signed(merchant, fields)


@dataclass(frozen=True)
class Original:
    """The payment a refund or void refers to."""

    order_no: str
    created_at: datetime
    query_id: str | None = None


def _original_fields(original: Original) -> dict[str, str]:
    if original.query_id:
        return {"origQryId": original.query_id}
    return {
        "origOrderId": wire.to_order_id(original.order_no),
        "origTxnTime": wire.format_txn_time(original.created_at),
    }


def refund_fields(
    merchant: Merchant,
    *,
    refund_no: str,
    created_at: datetime,
    original: Original,
    amount: int,
    currency: str,
    back_url: str,
) -> dict[str, str]:
    """The signed fields of a refund (txnType 04)."""
    fields = base_fields(merchant, "04", "00", BIZ_GATEWAY)
    fields["channelType"] = CHANNEL_PC
    try:
        fields["orderId"] = wire.to_order_id(refund_no)
        fields["txnTime"] = wire.format_txn_time(created_at)
        fields["currencyCode"] = wire.currency_code(currency)
        fields.update(_original_fields(original))
    except wire.WireError as exc:
        raise _invalid(str(exc)) from None
    if amount < 1:
        raise _invalid("the refund amount must be at least 1 fen")
    fields["txnAmt"] = str(amount)
    fields["backUrl"] = back_url
    return signed(merchant, fields)


def void_fields(
    merchant: Merchant, original: Original, amount: int | None, now: datetime
) -> dict[str, str]:
    """The signed fields of a void (txnType 31) that closes `original`.

    `amount` is the original amount when UnionPay has reported it; a void of an order UnionPay
    has never seen (a form the buyer has not submitted) has nothing to match it against. No
    `backUrl`: a void of an unpaid order moves no money and its answer is final.
    """
    fields = base_fields(merchant, "31", "00", BIZ_GATEWAY)
    fields["channelType"] = CHANNEL_PC
    try:
        fields["orderId"] = wire.void_order_id(original.order_no)
        fields["txnTime"] = wire.format_txn_time(now)
        fields.update(_original_fields(original))
        # Named by orderId as well, so the void also reaches an order not paid yet.
        fields["origOrderId"] = wire.to_order_id(original.order_no)
        fields["origTxnTime"] = wire.format_txn_time(original.created_at)
    except wire.WireError as exc:
        raise _invalid(str(exc)) from None
    if amount is not None:
        fields["txnAmt"] = str(amount)
        fields["currencyCode"] = wire.currency_code("CNY")
    return signed(merchant, fields)


def form_action(base_url: str, fields: Mapping[str, str]) -> Action:
    """What the buyer's browser posts to the gateway for `web` and `h5`."""
    return Action("form_post", url=base_url.rstrip("/") + FRONT_PATH, fields=dict(fields))


def read_answer(
    answer: HttpAnswer, verifier: ChainVerifier, now: datetime, sent: Mapping[str, str]
) -> dict[str, str]:
    """A verified answer's fields about the request `sent`. Raises a `ChannelError`."""
    if answer.status in (429, 503):
        raise ChannelUnavailable(f"UnionPay answered HTTP {answer.status}", code=str(answer.status))
    if answer.status != 200:
        raise ChannelOutcomeUnknown(
            f"UnionPay answered HTTP {answer.status}", code=str(answer.status)
        )
    try:
        fields = wire.decode_answer(answer.body)
        verify_signed(fields, verifier, now)
    except wire.WireError as exc:
        raise ChannelOutcomeUnknown(f"unreadable answer from UnionPay: {exc}") from None
    except VerificationError as exc:
        raise ChannelOutcomeUnknown(
            f"unverifiable answer from UnionPay: {exc.message}", code="ANSWER_SIGNATURE"
        ) from None
    # A query answer describes the queried transaction (its txnType, not 00), so only the
    # identity is compared.
    for name in ("merId", "orderId", "txnTime"):
        if name in fields and fields[name] != sent.get(name):
            raise ChannelOutcomeUnknown(f"UnionPay's answer names another {name}")
    if not fields.get("respCode"):
        raise ChannelOutcomeUnknown("UnionPay's answer has no respCode")
    return fields


def parse_consume_answer(method: Method, fields: Mapping[str, str]) -> CreateResult:
    """A verified app, QR or barcode answer → what to show the buyer. Raises a `ChannelError`."""
    code = fields["respCode"]
    query_id = fields.get("queryId") or None
    if method == "barcode" and (code == "00" or code in codes.PROCESSING):
        state = TradeState.SUCCEEDED if code == "00" else TradeState.PENDING
        return CreateResult(
            Action("none"),
            state=state,
            channel_trade_no=query_id,
            amount=_amount(fields),
            currency=wire.currency_of(fields.get("currencyCode", "156")),
        )
    if code != "00":
        raise codes.error_for(code, fields.get("respMsg", ""), "payment")
    name = "tn" if method == "app" else "qrCode"
    value = fields.get(name)
    if not value:
        raise ChannelOutcomeUnknown(f"UnionPay's answer lacks {name}")
    if method == "app":
        return CreateResult(Action("app_params", params={"tn": value}), channel_trade_no=query_id)
    return CreateResult(Action("qr_code", qr_code=value), channel_trade_no=query_id)


def _amount(fields: Mapping[str, str]) -> int | None:
    text = fields.get("txnAmt")
    if text is None:
        return None
    try:
        return wire.parse_amount(text)
    except wire.WireError as exc:
        raise ChannelOutcomeUnknown(f"unreadable answer from UnionPay: {exc}") from None


def parse_query_answer(fields: Mapping[str, str], order_no: str) -> TradeStatus:
    """A verified query answer about a payment; respCode 34 is `NOT_FOUND`."""
    code = fields["respCode"]
    if code == codes.NOT_FOUND:
        return TradeStatus(order_no, TradeState.NOT_FOUND, channel_state=code)
    if code != "00":
        raise codes.error_for(code, fields.get("respMsg", ""), "query")
    orig = fields.get("origRespCode", "")
    if not orig:
        raise ChannelOutcomeUnknown("UnionPay's query answer has no origRespCode")
    return TradeStatus(
        order_no=order_no,
        state=codes.trade_state(orig),
        channel_state=orig,
        channel_trade_no=fields.get("queryId") or None,
        amount=_amount(fields),
        currency=wire.currency_of(fields.get("currencyCode", "156")),
        account_id=fields.get("merId") or None,
    )


def parse_refund_answer(fields: Mapping[str, str], refund_no: str, order_no: str) -> RefundStatus:
    """A verified refund answer. `00` means accepted, not refunded: the result comes later."""
    code = fields["respCode"]
    if code != "00" and code not in codes.PROCESSING:
        raise codes.error_for(code, fields.get("respMsg", ""), "refund")
    return RefundStatus(
        refund_no=refund_no,
        state=RefundState.PENDING,
        channel_state=code,
        order_no=order_no,
        channel_refund_no=fields.get("queryId") or None,
        amount=_amount(fields),
    )


def parse_refund_query_answer(
    fields: Mapping[str, str], refund_no: str, order_no: str
) -> RefundStatus:
    """A verified query answer about a refund; respCode 34 is `NOT_FOUND`."""
    code = fields["respCode"]
    if code == codes.NOT_FOUND:
        return RefundStatus(refund_no, RefundState.NOT_FOUND, channel_state=code)
    if code != "00":
        raise codes.error_for(code, fields.get("respMsg", ""), "refund query")
    orig = fields.get("origRespCode", "")
    if not orig:
        raise ChannelOutcomeUnknown("UnionPay's query answer has no origRespCode")
    return RefundStatus(
        refund_no=refund_no,
        state=codes.refund_state(orig),
        channel_state=orig,
        order_no=order_no,
        channel_refund_no=fields.get("queryId") or None,
        amount=_amount(fields),
    )


def parse_void_answer(fields: Mapping[str, str]) -> None:
    """`00`, or `45` (already voided), close the order; anything else raises."""
    code = fields["respCode"]
    if code in ("00", codes.VOIDED):
        return
    raise codes.error_for(code, fields.get("respMsg", ""), "void")
