"""The UnionPay simulator's transactions: field rules, idempotency, buyer actions, refunds, voids.

No HTTP here: `channels.unionpay.sim.app` turns a `UnionPayError` into a signed answer with
its `respCode`. A transaction is identified by `merId + orderId + txnTime`; a repeat with the
same fields gets the same answer, a repeat with different fields `12` (重复交易).

Special amounts make the synchronous answer say "processing" so that callers exercise the
query-again path (`PROCESSING_AMOUNTS`): 303 fen answers `03` although the transaction went
through as usual; 304 and 305 answer `04`/`05` and leave it in progress: a payment-code consume
waits for the buyer's password, like one above the no-password limit (`NO_PASSWORD_LIMIT`).
Every refund is accepted first and finishes after the `refund_delay_ms` fault's delay.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from channels.sim.kit import Delivery
from channels.unionpay.protocol import codes, wire

PROCESSING_AMOUNTS: Mapping[int, str] = {303: "03", 304: "04", 305: "05"}
NO_PASSWORD_LIMIT = 100_000
"""Payment-code consumes above ¥1000 ask the buyer for a password (UnionPay's 小额免密 limit)."""
REFUND_FAIL_CODE = "01"
QR_NO = re.compile(r"62[0-9]{17}")
"""A UnionPay payment code ("付款码"): 19 digits starting 62."""
DECLINE_CODE = "64"
"""卡上的余额不足: the code a declined payment ends with."""

Kind = Literal["front", "app", "qr", "barcode", "refund", "void"]
State = Literal["waiting", "processing", "succeeded", "failed", "voided"]


class UnionPayError(Exception):
    """A refusal: `respCode` and a message naming the field when there is one."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.message = f"{codes.message(code)}[{detail}]" if detail else codes.message(code)
        super().__init__(self.message)


@dataclass
class Txn:
    """One transaction at the simulated UnionPay."""

    kind: Kind
    mer_id: str
    order_id: str
    txn_time: str
    request: dict[str, str]
    """The request's fields without `signature`: a repeat must match them."""
    amount: int | None
    created_at: datetime
    query_id: str
    state: State = "waiting"
    fail_code: str = ""
    answer_code: str = "00"
    """The synchronous answer's respCode (00, or 03/04/05 for a special amount)."""
    code: str = ""
    """What the buyer was given: tn, qrCode, the form's orderId or the payment code."""
    trace_no: str = ""
    trace_time: str = ""
    paid_at: datetime | None = None
    original: Txn | None = None
    refunds: list[Txn] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def txn_type(self) -> str:
        return self.request.get("txnType", "01")

    @property
    def orig_resp_code(self) -> str:
        """The transaction's state in `origRespCode` terms."""
        if self.state == "succeeded":
            return "00"
        if self.state == "voided":
            return codes.VOIDED
        if self.state == "failed":
            return self.fail_code or "01"
        return "05"

    @property
    def pay_timeout(self) -> datetime | None:
        text = self.request.get("payTimeout")
        return wire.parse_txn_time(text) if text else None

    def refunded(self) -> int:
        """Refunds that took, or may still take, money back."""
        return sum(r.amount or 0 for r in self.refunds if r.state != "failed")

    def fields(self) -> dict[str, str]:
        """The transaction's fields in answers, queries and notifications."""
        out = {name: self.request[name] for name in _ECHOED if name in self.request}
        out.update(merId=self.mer_id, orderId=self.order_id, txnTime=self.txn_time)
        out["queryId"] = self.query_id
        if self.amount is not None:
            out["txnAmt"] = str(self.amount)
            out.setdefault("currencyCode", "156")
        if self.original is not None:
            out["origQryId"] = self.original.query_id
        if self.state == "succeeded" and self.amount is not None:
            stamp = (self.paid_at or self.created_at).astimezone(wire.BEIJING)
            out.update(traceNo=self.trace_no, traceTime=self.trace_time)
            out.update(settleAmt=str(self.amount), settleCurrencyCode="156")
            out["settleDate"] = stamp.strftime("%m%d")
        return out

    def as_dict(self) -> dict[str, object]:
        """The `/sim/orders/{orderId}` view."""
        return {
            "kind": self.kind,
            "fields": self.fields(),
            "state": self.state,
            "origRespCode": self.orig_resp_code,
            "code": self.code,
            "refunded": self.refunded(),
            "refunds": [r.order_id for r in self.refunds],
            "notifications": [d.as_dict() for d in self.deliveries],
        }


_ECHOED = (
    "version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType",
    "channelType", "currencyCode", "reqReserved",
)  # fmt: skip
_COMMON = (
    "version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType",
    "merId", "certId", "signature",
)  # fmt: skip
_KINDS: Mapping[tuple[str, str, str], tuple[Kind, str]] = {
    ("frontTransReq.do", "01", "01"): ("front", "000201"),
    ("appTransReq.do", "01", "01"): ("app", "000201"),
    ("backTransReq.do", "01", "07"): ("qr", "000000"),
    ("backTransReq.do", "01", "06"): ("barcode", "000000"),
    ("backTransReq.do", "04", "00"): ("refund", ""),
    ("backTransReq.do", "31", "00"): ("void", ""),
}
"""(path, txnType, txnSubType) → kind, and the bizType it requires ("" any)."""
BIZ_TYPES = frozenset({"000201", "000000", "000301", "000902"})


def require(fields: Mapping[str, str], *names: str) -> None:
    for name in names:
        if not fields.get(name):
            raise UnionPayError("13", name)


def check_common(fields: Mapping[str, str]) -> None:
    """The fields every request carries. Raises `UnionPayError`."""
    require(fields, *_COMMON)
    if fields["version"] != "5.1.0":
        raise UnionPayError("10", "version")
    if fields["encoding"].upper() != "UTF-8":
        raise UnionPayError("10", "encoding")
    if fields["signMethod"] != "01":
        raise UnionPayError("10", "signMethod")
    if fields["accessType"] != "0":
        raise UnionPayError("10", "accessType")
    if fields["bizType"] not in BIZ_TYPES:
        raise UnionPayError("10", "bizType")


def kind_of(path: str, fields: Mapping[str, str]) -> Kind:
    """Which transaction a request asks for at `path`. Raises `UnionPayError`."""
    found = _KINDS.get((path, fields["txnType"], fields["txnSubType"]))
    if found is None:
        raise UnionPayError("32", f"txnType={fields['txnType']},txnSubType={fields['txnSubType']}")
    kind, biz_type = found
    if biz_type and fields["bizType"] != biz_type:
        raise UnionPayError("10", "bizType")
    return kind


def check_identity(
    fields: Mapping[str, str], order_name: str = "orderId", time_name: str = "txnTime"
) -> tuple[str, str]:
    """A transaction's `orderId` and `txnTime` (or the original's). Raises `UnionPayError`."""
    require(fields, order_name, time_name)
    if not wire.ORDER_ID.fullmatch(fields[order_name]):
        raise UnionPayError("10", order_name)
    try:
        wire.parse_txn_time(fields[time_name])
    except wire.WireError:
        raise UnionPayError("10", time_name) from None
    return fields[order_name], fields[time_name]


def check_amount(fields: Mapping[str, str], *, required: bool = True) -> int | None:
    if not required and "txnAmt" not in fields:
        return None
    require(fields, "txnAmt")
    try:
        amount = wire.parse_amount(fields["txnAmt"])
    except wire.WireError:
        raise UnionPayError("10", "txnAmt") from None
    if fields.get("currencyCode", "156") != "156":
        raise UnionPayError("10", "currencyCode")
    return amount


def check_url(fields: Mapping[str, str], name: str, *, required: bool) -> None:
    if required:
        require(fields, name)
    value = fields.get(name)
    if value is not None and not value.startswith(("http://", "https://")):
        raise UnionPayError("10", name)


def check_consume(kind: Kind, fields: Mapping[str, str]) -> int:
    """A consume's own fields. Returns the amount. Raises `UnionPayError`."""
    require(fields, "channelType")
    if fields["channelType"] not in ("07", "08"):
        raise UnionPayError("10", "channelType")
    amount = check_amount(fields)
    assert amount is not None
    check_url(fields, "backUrl", required=True)
    check_url(fields, "frontUrl", required=False)
    if "payTimeout" in fields:
        try:
            timeout = wire.parse_txn_time(fields["payTimeout"])
        except wire.WireError:
            raise UnionPayError("10", "payTimeout") from None
        if timeout <= wire.parse_txn_time(fields["txnTime"]):
            raise UnionPayError("10", "payTimeout")
    if kind == "barcode":
        require(fields, "qrNo", "termId")
        if not QR_NO.fullmatch(fields["qrNo"]):
            raise UnionPayError("10", "qrNo")
    return amount


class TxnBook:
    """Every transaction the simulator knows, with the indexes buyers and queries need."""

    def __init__(self, rng: random.Random, now: Callable[[], datetime]) -> None:
        self._rng = rng
        self._now = now
        self._txns: dict[tuple[str, str, str], Txn] = {}
        self._by_query_id: dict[str, Txn] = {}
        self._by_code: dict[str, Txn] = {}

    def __iter__(self) -> Iterator[Txn]:
        return iter(list(self._txns.values()))

    def now(self) -> datetime:
        return self._now()

    def get(self, mer_id: str, order_id: str, txn_time: str) -> Txn | None:
        return self._txns.get((mer_id, order_id, txn_time))

    def by_order_id(self, order_id: str) -> Txn | None:
        """The latest transaction with this orderId, whatever its merId and txnTime."""
        found = [txn for key, txn in self._txns.items() if key[1] == order_id]
        return found[-1] if found else None

    def find_by_code(self, code: str) -> Txn | None:
        """The payment a buyer's code belongs to: tn, qrCode, the form's orderId or qrNo."""
        return self._by_code.get(code)

    def repeat(self, fields: Mapping[str, str], order_id: str, txn_time: str) -> Txn | None:
        """The existing transaction this request repeats, if any. Raises `UnionPayError`."""
        existing = self.get(fields["merId"], order_id, txn_time)
        if existing is None:
            return None
        if existing.request != _request(fields):
            raise UnionPayError("12", "orderId")
        return existing

    def add(self, kind: Kind, fields: Mapping[str, str], amount: int | None) -> Txn:
        order_id, txn_time = fields["orderId"], fields["txnTime"]
        now = self._now()
        txn = Txn(kind, fields["merId"], order_id, txn_time, _request(fields), amount, now, "")
        txn.query_id = self._digits_after(now, 7)
        if amount is not None and kind in ("app", "qr", "barcode", "refund"):
            txn.answer_code = PROCESSING_AMOUNTS.get(amount, "00")
        if kind == "barcode" and amount is not None and amount > NO_PASSWORD_LIMIT:
            txn.answer_code = "05"
        if kind == "app":
            txn.code = self._digits_after(now, 7)
        elif kind == "qr":
            txn.code = "https://qr.95516.com/00010000/" + self._digits(26)
        elif kind == "front":
            txn.code = order_id
        elif kind == "barcode":
            txn.code = fields["qrNo"]
        self._txns[(txn.mer_id, order_id, txn_time)] = txn
        self._by_query_id[txn.query_id] = txn
        if txn.code:
            self._by_code[txn.code] = txn
        return txn

    def tombstone(self, mer_id: str, order_id: str, txn_time: str) -> Txn:
        """A voided placeholder for an order UnionPay never saw: it can no longer be paid."""
        fields = {"merId": mer_id, "orderId": order_id, "txnTime": txn_time}
        txn = self.add("front", {**fields, "txnType": "01", "txnSubType": "01"}, None)
        txn.state = "voided"
        self._by_code.pop(txn.code, None)
        return txn

    def original(self, fields: Mapping[str, str]) -> Txn | None:
        """The consume a refund or void names by `origQryId` or `origOrderId`+`origTxnTime`."""
        if fields.get("origQryId"):
            txn = self._by_query_id.get(fields["origQryId"])
        else:
            order_id, txn_time = check_identity(fields, "origOrderId", "origTxnTime")
            txn = self.get(fields["merId"], order_id, txn_time)
        if txn is None or txn.mer_id != fields["merId"] or txn.txn_type != "01":
            return None
        return txn

    def pay(self, txn: Txn) -> None:
        """The buyer paid. Raises `UnionPayError` when the order cannot be paid."""
        self._check_payable(txn)
        now = self._now()
        txn.state = "succeeded"
        txn.paid_at = now
        txn.trace_no = self._digits(6)
        txn.trace_time = now.astimezone(wire.BEIJING).strftime("%m%d%H%M%S")

    def decline(self, txn: Txn) -> None:
        """The buyer's bank refused: failed with `DECLINE_CODE`, and no notification."""
        self._check_payable(txn)
        txn.state = "failed"
        txn.fail_code = DECLINE_CODE

    def refund(self, fields: Mapping[str, str], amount: int) -> Txn:
        """Record a refund of the consume it names. Raises `UnionPayError`."""
        original = self.original(fields)
        if original is None:
            raise UnionPayError("35", "origQryId" if "origQryId" in fields else "origOrderId")
        if original.state == "voided":
            raise UnionPayError(codes.VOIDED)
        if original.state != "succeeded" or original.amount is None:
            raise UnionPayError("35", f"state={original.state}")
        if amount > original.amount - original.refunded():
            raise UnionPayError("33", "txnAmt")
        txn = self.add("refund", fields, amount)
        txn.original = original
        txn.state = "processing"
        original.refunds.append(txn)
        return txn

    def finish_refund(self, txn: Txn, *, succeeded: bool = True) -> None:
        """A processing refund ends; a failed one gives its amount back to the payment."""
        if not succeeded:
            txn.state = "failed"
            txn.fail_code = REFUND_FAIL_CODE
            return
        txn.state = "succeeded"
        txn.paid_at = self._now()
        txn.trace_no = self._digits(6)
        txn.trace_time = txn.paid_at.astimezone(wire.BEIJING).strftime("%m%d%H%M%S")

    def void(self, fields: Mapping[str, str], amount: int | None) -> Txn:
        """Void (close) the consume it names. Raises `UnionPayError`.

        UnionPay voids a payment of the same day in full. The simulator also takes a void of
        an unpaid order, and of one it has never seen (a form not yet submitted), as closing
        it: it can no longer be paid.
        """
        original = self.original(fields)
        if original is None and fields.get("origQryId"):
            raise UnionPayError("35", "origQryId")
        if original is None:
            order_id, txn_time = check_identity(fields, "origOrderId", "origTxnTime")
            original = self.tombstone(fields["merId"], order_id, txn_time)
        elif original.state == "voided":
            raise UnionPayError(codes.VOIDED)
        elif original.state == "failed":
            raise UnionPayError("35", "state=failed")
        else:
            if amount is None:
                raise UnionPayError("13", "txnAmt")
            if amount != original.amount:
                raise UnionPayError("36", "txnAmt")
            today = self._now().astimezone(wire.BEIJING).strftime("%Y%m%d")
            paid = original.state == "succeeded"
            if paid and (original.refunds or not original.txn_time.startswith(today)):
                raise UnionPayError("35", "origTxnTime")
            original.state = "voided"
        txn = self.add("void", fields, amount)
        txn.original = original
        txn.state = "succeeded"
        return txn

    def _check_payable(self, txn: Txn) -> None:
        if txn.kind in ("refund", "void") or txn.state not in ("waiting", "processing"):
            raise UnionPayError("35", f"state={txn.state}")
        timeout = txn.pay_timeout
        if timeout is not None and timeout <= self._now():
            raise UnionPayError("39", "payTimeout")

    def _digits(self, count: int) -> str:
        return "".join(self._rng.choice(string.digits) for _ in range(count))

    def _digits_after(self, now: datetime, count: int) -> str:
        return now.astimezone(wire.BEIJING).strftime(wire.TXN_TIME_FORMAT) + self._digits(count)


def _request(fields: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k not in ("signature", "certId")}
