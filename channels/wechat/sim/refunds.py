"""The WeChat Pay simulator's refunds: validation, deduplication, and the refunds of each order.

No HTTP and no timers here: `channels.wechat.sim.state` finishes refunds after a delay and
sends their notifications. Rules follow WeChat's documentation:

- only a paid order (`SUCCESS`, or already `REFUND`) can be refunded; an unknown or unpaid one
  is `404 RESOURCE_NOT_EXISTS`;
- `amount.total` must be the order's total, and all refunds of an order together may never
  exceed it (`400 INVALID_REQUEST 申请退款金额超过订单可退金额`); at most 50 refunds an order;
- the same `out_refund_no` with the same order and amounts returns the refund already made,
  never a second one; with anything different it is refused;
- an accepted refund is `PROCESSING`, the order's `trade_state` becomes `REFUND`; the refund
  later ends `SUCCESS` (or `ABNORMAL`, by fault injection). Abnormal refunds keep their amount
  (WeChat holds the money until the merchant redirects it); only `CLOSED` ones release it.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels.sim.kit import Delivery
from channels.wechat.protocol.wire import CHINA_TIME, format_time
from channels.wechat.sim.orders import Order, OrderBook, WeChatError, param_error

OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
MAX_REFUNDS_PER_ORDER = 50
REFUNDABLE_STATES = ("SUCCESS", "REFUND")
FINAL_STATES = ("SUCCESS", "CLOSED", "ABNORMAL")
EVENTS = {
    "SUCCESS": ("REFUND.SUCCESS", "退款成功"),
    "ABNORMAL": ("REFUND.ABNORMAL", "退款异常"),
    "CLOSED": ("REFUND.CLOSED", "退款关闭"),
}
"""A final refund status → the notification's `event_type` and `summary`."""


@dataclass
class Refund:
    """One refund at the simulated WeChat Pay."""

    mchid: str
    out_refund_no: str
    refund_id: str
    order: Order
    refund: int
    reason: str | None
    notify_url: str | None
    created_at: datetime
    status: str = "PROCESSING"
    success_time: datetime | None = None
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def transaction_id(self) -> str:
        assert self.order.transaction_id is not None, "only paid orders are refunded"
        return self.order.transaction_id

    def answer(self) -> dict[str, Any]:
        """The refund object of an apply or query answer."""
        order = self.order
        data: dict[str, Any] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id,
            "out_trade_no": order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": format_time(self.created_at),
            "status": self.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": order.total,
                "refund": self.refund,
                "from": [],
                "payer_total": order.total,
                "payer_refund": self.refund,
                "settlement_refund": self.refund,
                "settlement_total": order.total,
                "discount_refund": 0,
                "currency": order.currency,
                "refund_fee": 0,
            },
            "promotion_detail": [],
        }
        if self.success_time is not None:
            data["success_time"] = format_time(self.success_time)
        return data

    def resource(self) -> dict[str, Any]:
        """The decrypted resource of this refund's `REFUND.*` notification."""
        order = self.order
        data: dict[str, Any] = {
            "mchid": self.mchid,
            "out_trade_no": order.out_trade_no,
            "transaction_id": self.transaction_id,
            "out_refund_no": self.out_refund_no,
            "refund_id": self.refund_id,
            "refund_status": self.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": order.total,
                "refund": self.refund,
                "payer_total": order.total,
                "payer_refund": self.refund,
            },
        }
        if self.success_time is not None:
            data["success_time"] = format_time(self.success_time)
        return data

    def as_dict(self) -> dict[str, Any]:
        """The `/sim/refunds/{out_refund_no}` view, notification attempts included."""
        return {
            "refund": self.answer(),
            "reason": self.reason,
            "notify_url": self.notify_url,
            "notifications": [delivery.as_dict() for delivery in self.deliveries],
        }


def _validate(body: Mapping[str, Any]) -> tuple[str, int, int]:
    """Check an apply-for-refund body; the refund number, refund and total amounts."""
    out_refund_no = body.get("out_refund_no")
    if not isinstance(out_refund_no, str) or not out_refund_no:
        raise param_error("/out_refund_no", "必填 (required string)")
    if not OUT_REFUND_NO.fullmatch(out_refund_no):
        raise param_error("/out_refund_no", "1-64 位数字、大小写字母或 _-|*@", out_refund_no)
    if not any(isinstance(body.get(name), str) for name in ("transaction_id", "out_trade_no")):
        raise param_error("/out_trade_no", "transaction_id 与 out_trade_no 须二选一")
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or not 1 <= len(reason) <= 80):
        raise param_error("/reason", "须为 1-80 个字符", reason)
    notify_url = body.get("notify_url")
    if notify_url is not None and (
        not isinstance(notify_url, str)
        or not notify_url.startswith(("https://", "http://"))
        or "?" in notify_url
    ):
        raise param_error("/notify_url", "须为不带参数的 http(s) 地址", notify_url)
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise param_error("/amount", "必填 (required object)")
    numbers = []
    for name in ("refund", "total"):
        value = amount.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise param_error(f"/amount/{name}", "须为大于 0 的整数 (fen)", value)
        numbers.append(value)
    if amount.get("currency") != "CNY":
        raise param_error("/amount/currency", "仅支持 CNY", amount.get("currency"))
    return out_refund_no, numbers[0], numbers[1]


class RefundBook:
    """Every refund the simulator knows, by merchant and refund number, and by order."""

    def __init__(self, rng: random.Random, now: Callable[[], datetime]) -> None:
        self._rng = rng
        self._now = now
        self._refunds: dict[tuple[str, str], Refund] = {}
        self._by_order: dict[tuple[str, str], list[Refund]] = {}

    def get(self, mchid: str, out_refund_no: str) -> Refund | None:
        return self._refunds.get((mchid, out_refund_no))

    def of_order(self, order: Order) -> list[Refund]:
        return list(self._by_order.get((order.mchid, order.out_trade_no), ()))

    def refunded(self, order: Order) -> int:
        """What the order's refunds take from it (closed refunds give their amount back)."""
        return sum(r.refund for r in self.of_order(order) if r.status != "CLOSED")

    def apply(self, orders: OrderBook, mchid: str, body: Mapping[str, Any]) -> tuple[Refund, bool]:
        """The refund for a request, and whether it is new. Raises `WeChatError`."""
        out_refund_no, amount, total = _validate(body)
        transaction_id = body.get("transaction_id")
        if isinstance(transaction_id, str):
            order = orders.get_by_transaction(mchid, transaction_id)
        else:
            order = orders.get(mchid, str(body["out_trade_no"]))
        if order is None or order.trade_state not in REFUNDABLE_STATES:
            raise WeChatError(
                404, "RESOURCE_NOT_EXISTS", "订单不存在或未支付，未支付的订单不能退款"
            )
        existing = self.get(mchid, out_refund_no)
        if existing is not None:
            if existing.order is not order or (existing.refund, order.total) != (amount, total):
                raise WeChatError(
                    400, "INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试"
                )
            return existing, False
        if total != order.total:
            raise WeChatError(400, "INVALID_REQUEST", "amount.total 与原订单金额不一致")
        if len(self.of_order(order)) >= MAX_REFUNDS_PER_ORDER:
            raise WeChatError(400, "INVALID_REQUEST", "该订单退款次数已达上限 (50 次)")
        if self.refunded(order) + amount > order.total:
            raise WeChatError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        reason = body.get("reason")
        notify_url = body.get("notify_url")
        refund = Refund(
            mchid=mchid,
            out_refund_no=out_refund_no,
            refund_id=self._refund_id(),
            order=order,
            refund=amount,
            reason=reason if isinstance(reason, str) else None,
            notify_url=notify_url if isinstance(notify_url, str) else None,
            created_at=self._now(),
        )
        self._refunds[(mchid, out_refund_no)] = refund
        self._by_order.setdefault((mchid, order.out_trade_no), []).append(refund)
        order.trade_state = "REFUND"
        return refund, True

    def finish(self, refund: Refund, *, succeeded: bool) -> None:
        """End a processing refund: `SUCCESS` with a success time, or `ABNORMAL`."""
        if refund.status != "PROCESSING":
            return
        if succeeded:
            refund.status = "SUCCESS"
            refund.success_time = self._now()
        else:
            refund.status = "ABNORMAL"

    def _refund_id(self) -> str:
        stamp = self._now().astimezone(CHINA_TIME).strftime("%Y%m%d")
        digits = string.digits
        head = "".join(self._rng.choice(digits) for _ in range(4))
        tail = "".join(self._rng.choice(digits) for _ in range(15))
        return f"50{head}{stamp}{tail}"
