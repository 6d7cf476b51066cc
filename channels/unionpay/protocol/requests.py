"""UnionPay ACP 5.1.0 requests: what the adapter sends, or hands the buyer. No I/O.

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
`queryId`) or, when that is not known yet, by `origOrderId` + `origTxnTime`; a close is a void.
Query is 00/00 by `orderId` + `txnTime`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from channels.base import Action, Method, RefundOrder
from channels.errors import ChannelRejected
from channels.http import HttpRequest
from channels.unionpay.protocol.wire import (
    Merchant,
    WireError,
    base_fields,
    currency_code,
    format_txn_time,
    post,
    signed,
    to_order_id,
    void_order_id,
)

FRONT_PATH = "/gateway/api/frontTransReq.do"
BACK_PATH = "/gateway/api/backTransReq.do"
QUERY_PATH = "/gateway/api/queryTrans.do"
APP_PATH = "/gateway/api/appTransReq.do"
FILE_PATH = "/gateway/api/fileTransRequest.do"

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
        fields["orderId"] = to_order_id(consume.order_no)
        fields["txnTime"] = format_txn_time(consume.created_at)
        fields["txnAmt"] = str(consume.amount)
        fields["currencyCode"] = currency_code(consume.currency)
        fields["backUrl"] = consume.back_url
        if consume.front_url and product.path == FRONT_PATH:
            fields["frontUrl"] = consume.front_url
        if consume.expires_at is not None:
            fields["payTimeout"] = format_txn_time(consume.expires_at)
    except WireError as exc:
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
        fields["orderId"] = to_order_id(order_no)
        fields["txnTime"] = format_txn_time(created_at)
    except WireError as exc:
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
        "origOrderId": to_order_id(original.order_no),
        "origTxnTime": format_txn_time(original.created_at),
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
        fields["orderId"] = to_order_id(refund_no)
        fields["txnTime"] = format_txn_time(created_at)
        fields["currencyCode"] = currency_code(currency)
        fields.update(_original_fields(original))
    except WireError as exc:
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
        fields["orderId"] = void_order_id(original.order_no)
        fields["txnTime"] = format_txn_time(now)
        fields.update(_original_fields(original))
        # Named by orderId as well, so the void also reaches an order not paid yet.
        fields["origOrderId"] = to_order_id(original.order_no)
        fields["origTxnTime"] = format_txn_time(original.created_at)
    except WireError as exc:
        raise _invalid(str(exc)) from None
    if amount is not None:
        fields["txnAmt"] = str(amount)
        fields["currencyCode"] = currency_code("CNY")
    return signed(merchant, fields)


def form_action(base_url: str, fields: Mapping[str, str]) -> Action:
    """What the buyer's browser posts to the gateway for `web` and `h5`."""
    return Action("form_post", url=base_url.rstrip("/") + FRONT_PATH, fields=dict(fields))


@dataclass(frozen=True)
class Call:
    """A server call: the signed fields (its answer must name the same order) and the post."""

    fields: dict[str, str]
    request: HttpRequest


def _call(base_url: str, path: str, fields: dict[str, str]) -> Call:
    return Call(fields, post(base_url, path, fields))


def build_create_request(merchant: Merchant, base_url: str, consume: Consume) -> Call | Action:
    """The consume for `app`, `qr` and `barcode`, or for `web` and `h5` the form the buyer's
    browser posts. Raises `ChannelRejected(fault="request")` (see `consume_fields`)."""
    fields = consume_fields(merchant, consume)
    product = PRODUCTS[consume.method]
    if product.path == FRONT_PATH:
        return form_action(base_url, fields)
    return _call(base_url, product.path, fields)


def build_query_request(
    merchant: Merchant, base_url: str, order_no: str, created_at: datetime
) -> Call:
    """A status query of a payment by `orderId` + `txnTime`."""
    return _call(base_url, QUERY_PATH, query_fields(merchant, order_no, created_at))


def build_close_request(
    merchant: Merchant, base_url: str, original: Original, amount: int | None, now: datetime
) -> Call:
    """A close is a void of the unpaid `original` (see `void_fields`)."""
    return _call(base_url, BACK_PATH, void_fields(merchant, original, amount, now))


def build_refund_request(merchant: Merchant, base_url: str, refund: RefundOrder) -> Call:
    """A refund of (part of) the paid order; UnionPay reports its result later."""
    payment = refund.payment
    fields = refund_fields(
        merchant,
        refund_no=refund.refund_no,
        created_at=refund.created_at,
        original=Original(payment.order_no, payment.created_at, payment.channel_trade_no),
        amount=refund.amount,
        currency=refund.currency,
        back_url=refund.notify_url,
    )
    return _call(base_url, BACK_PATH, fields)


def build_refund_query_request(
    merchant: Merchant, base_url: str, refund_no: str, created_at: datetime
) -> Call:
    """A status query of a refund by its own `orderId` + `txnTime`."""
    return _call(base_url, QUERY_PATH, query_fields(merchant, refund_no, created_at))


def build_statement_request(merchant: Merchant, base_url: str, day: date, now: datetime) -> Call:
    """The file transfer (`txnType` 76, `fileType` 00) of the settlement file of `day`."""
    fields = base_fields(merchant, "76", "01", "000000")
    fields.update(settleDate=f"{day:%m%d}", txnTime=format_txn_time(now), fileType="00")
    return _call(base_url, FILE_PATH, signed(merchant, fields))
