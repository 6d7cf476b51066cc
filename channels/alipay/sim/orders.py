"""The Alipay simulator's trade book: validation, idempotent create, buyer actions, refunds.

No HTTP here: `channels.alipay.sim.app` turns `AlipayError` into Alipay's signed answers.
Rules follow Alipay's documented behaviour: a repeated create with the same `out_trade_no` and
the same parameters returns the same trade; different parameters are refused
(ACQ.CONTEXT_INCONSISTENT); paid and closed trades refuse both. A refund's `out_request_no`
is its identity: repeating it with the same amount answers `fund_change: N` and moves no money,
and the sum of refunds never exceeds the trade's total.

Barcode payments (`alipay.trade.pay`) pay at once, except with an auth code starting with
`26`: then the buyer must confirm on their phone (10003, WAIT_BUYER_PAY) and the auth code is
what `/sim/buyer/pay` takes.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from channels.alipay.protocol.wire import BEIJING, fen_to_yuan, format_time, parse_time, yuan_to_fen
from channels.sim.kit import Delivery

OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_]{1,64}")
OUT_REQUEST_NO = re.compile(r"[0-9A-Za-z_\-]{1,64}")
BUYER_ID = re.compile(r"2088[0-9]{12}")
AUTH_CODE = re.compile(r"(2[5-9]|30)[0-9]{14,22}")
CONFIRM_PREFIX = "26"
"""Auth codes starting with this wait for the buyer to confirm (10003)."""
MAX_TOTAL = 10_000_000_000
"""100,000,000.00 yuan, Alipay's ceiling for one trade."""
TIMEOUT_EXPRESS = re.compile(r"([1-9][0-9]{0,4})([mhd])|1c")

PRODUCT_CODES: Mapping[str, frozenset[str]] = {
    "alipay.trade.precreate": frozenset({"FACE_TO_FACE_PAYMENT", "QR_CODE_OFFLINE"}),
    "alipay.trade.page.pay": frozenset({"FAST_INSTANT_TRADE_PAY"}),
    "alipay.trade.wap.pay": frozenset({"QUICK_WAP_WAY", "QUICK_WAP_PAY"}),
    "alipay.trade.app.pay": frozenset({"QUICK_MSECURITY_PAY"}),
    "alipay.trade.create": frozenset({"JSAPI_PAY", "FACE_TO_FACE_PAYMENT"}),
    "alipay.trade.pay": frozenset({"FACE_TO_FACE_PAYMENT"}),
}
CREATE_METHODS = tuple(PRODUCT_CODES)
BROWSER_METHODS = ("alipay.trade.page.pay", "alipay.trade.wap.pay", "alipay.trade.app.pay")
PAID = ("TRADE_SUCCESS", "TRADE_FINISHED")
SANDBOX_BUYER_ID = "2088102146225135"
SANDBOX_BUYER_LOGON = "bvh***@sandbox.com"


class AlipayError(Exception):
    """An answer other than 10000: a business failure or a gateway refusal."""

    def __init__(
        self, code: str, msg: str, sub_code: str, sub_msg: str, *, gateway: bool = False
    ) -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.gateway = gateway
        """Refused by the gateway itself: answered as `error_response`."""
        self.extra: dict[str, Any] = {}

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.sub_code:
            out["sub_code"] = self.sub_code
            out["sub_msg"] = self.sub_msg
        out.update(self.extra)
        return out


def business(sub_code: str, sub_msg: str) -> AlipayError:
    return AlipayError("40004", "Business Failed", sub_code, sub_msg)


def invalid(name: str, issue: str) -> AlipayError:
    """40004 ACQ.INVALID_PARAMETER naming the field."""
    return business("ACQ.INVALID_PARAMETER", f"参数无效: {name} {issue}")


def missing(name: str) -> AlipayError:
    return business("ACQ.INVALID_PARAMETER", f"缺少必选参数: {name}")


def trade_not_exist() -> AlipayError:
    return business("ACQ.TRADE_NOT_EXIST", "交易不存在")


@dataclass
class Refund:
    out_request_no: str
    amount: int
    reason: str
    at: datetime


@dataclass
class Trade:
    """One trade at the simulated Alipay."""

    app_id: str
    seller_id: str
    out_trade_no: str
    api_method: str
    subject: str
    total: int
    fingerprint: dict[str, Any]
    """What must match when the same `out_trade_no` is created again."""
    trade_no: str
    created_at: datetime
    notify_url: str | None = None
    return_url: str | None = None
    time_expire: datetime | None = None
    code: str = ""
    """What the buyer was given and `/sim/buyer/*` accepts: qr_code, trade_no or auth code."""
    status: str = "WAIT_BUYER_PAY"
    buyer_id: str | None = None
    auth_code: str | None = None
    gmt_payment: datetime | None = None
    gmt_close: datetime | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds.values())

    def summary(self) -> dict[str, Any]:
        """The fields query and pay answers share."""
        paid = self.gmt_payment is not None
        data: dict[str, Any] = {
            "trade_no": self.trade_no,
            "out_trade_no": self.out_trade_no,
            "total_amount": fen_to_yuan(self.total),
            "buyer_pay_amount": fen_to_yuan(self.total if paid else 0),
            "point_amount": "0.00",
            "invoice_amount": fen_to_yuan(self.total if paid else 0),
            "receipt_amount": fen_to_yuan(self.total if paid else 0),
        }
        if self.buyer_id:
            data["buyer_logon_id"] = SANDBOX_BUYER_LOGON
            data["buyer_user_id"] = self.buyer_id
        if self.gmt_payment is not None:
            data["fund_bill_list"] = [
                {"fund_channel": "ALIPAYACCOUNT", "amount": fen_to_yuan(self.total)}
            ]
        return data

    def query_answer(self) -> dict[str, Any]:
        data = {"code": "10000", "msg": "Success", **self.summary()}
        data["trade_status"] = self.status
        if self.gmt_payment is not None:
            data["send_pay_date"] = format_time(self.gmt_payment)
        return data

    def notification(self, notify_id: str, now: datetime, refund: Refund | None) -> dict[str, str]:
        """The unsigned fields of a `trade_status_sync` notification."""
        fields = {
            "notify_time": format_time(now),
            "notify_type": "trade_status_sync",
            "notify_id": notify_id,
            "app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": self.trade_no,
            "out_trade_no": self.out_trade_no,
            "seller_id": self.seller_id,
            "trade_status": self.status,
            "total_amount": fen_to_yuan(self.total),
            "subject": self.subject,
            "gmt_create": format_time(self.created_at),
        }
        if self.buyer_id:
            fields["buyer_id"] = self.buyer_id
            fields["buyer_logon_id"] = SANDBOX_BUYER_LOGON
        if self.gmt_payment is not None:
            paid = fen_to_yuan(self.total)
            fields.update(receipt_amount=paid, invoice_amount=paid, buyer_pay_amount=paid)
            fields["point_amount"] = "0.00"
            fields["gmt_payment"] = format_time(self.gmt_payment)
            fund_bill = [{"amount": paid, "fundChannel": "ALIPAYACCOUNT"}]
            fields["fund_bill_list"] = _compact(fund_bill)
        if self.gmt_close is not None:
            fields["gmt_close"] = format_time(self.gmt_close)
        if refund is not None:
            fields["out_biz_no"] = refund.out_request_no
            fields["refund_fee"] = fen_to_yuan(self.refunded)
            # Alipay writes refund times with milliseconds.
            fields["gmt_refund"] = format_time(refund.at) + f".{refund.at.microsecond // 1000:03d}"
        return fields

    def as_dict(self) -> dict[str, Any]:
        """The `/sim/orders/{out_trade_no}` view, notification attempts included."""
        return {
            "trade": self.query_answer(),
            "method": self.api_method,
            "app_id": self.app_id,
            "subject": self.subject,
            "code": self.code,
            "notify_url": self.notify_url,
            "created_at": format_time(self.created_at),
            "time_expire": format_time(self.time_expire) if self.time_expire else None,
            "refunds": [
                {
                    "out_request_no": refund.out_request_no,
                    "refund_amount": fen_to_yuan(refund.amount),
                    "gmt_refund_pay": format_time(refund.at),
                }
                for refund in self.refunds.values()
            ],
            "notifications": [delivery.as_dict() for delivery in self.deliveries],
        }


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def text(biz: Mapping[str, Any], name: str, max_len: int, *, required: bool = True) -> str:
    value = biz.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return ""
    if not isinstance(value, str):
        raise invalid(name, "须为字符串")
    if len(value) > max_len:
        raise invalid(name, f"长度超过 {max_len}")
    return value


def amount(biz: Mapping[str, Any], name: str) -> int:
    """A yuan amount given as a string or a JSON number (kept exact as `Decimal`)."""
    value = biz.get(name)
    if value is None or value == "":
        raise missing(name)
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        value = format(value, "f")
    if not isinstance(value, str):
        raise invalid(name, "须为金额")
    try:
        fen = yuan_to_fen(value)
    except ValueError:
        raise invalid(name, "金额格式错误 (元, 最多两位小数)") from None
    if fen < 1:
        raise invalid(name, "须大于 0")
    return fen


class TradeBook:
    """Every trade the simulator knows, with the indexes buyers and queries need."""

    def __init__(self, rng: random.Random, now: Callable[[], datetime]) -> None:
        self._rng = rng
        self._now = now
        self._trades: dict[tuple[str, str], Trade] = {}
        self._by_trade_no: dict[tuple[str, str], Trade] = {}
        self._by_code: dict[str, Trade] = {}

    def __iter__(self) -> Iterator[Trade]:
        return iter(list(self._trades.values()))

    def now(self) -> datetime:
        return self._now()

    def digits(self, count: int) -> str:
        return "".join(self._rng.choice(string.digits) for _ in range(count))

    def token(self, count: int) -> str:
        return "".join(
            self._rng.choice(string.ascii_lowercase + string.digits) for _ in range(count)
        )

    def open(
        self,
        api_method: str,
        app_id: str,
        seller_id: str,
        biz: Mapping[str, Any],
        *,
        notify_url: str | None,
        return_url: str | None,
    ) -> tuple[Trade, bool]:
        """The trade a create call (or a buyer opening a page) names, and whether it is new."""
        now = self._now()
        out_trade_no = text(biz, "out_trade_no", 64)
        if not OUT_TRADE_NO.fullmatch(out_trade_no):
            raise invalid("out_trade_no", "仅支持字母、数字、下划线")
        total = amount(biz, "total_amount")
        if total > MAX_TOTAL:
            raise business("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额")
        subject = text(biz, "subject", 256)
        product_code = text(biz, "product_code", 64, required=api_method == "alipay.trade.page.pay")
        if product_code and product_code not in PRODUCT_CODES[api_method]:
            raise invalid("product_code", f"{api_method} 不支持 {product_code}")
        expires = _expiry(biz, now)
        buyer_id = auth_code = None
        if api_method == "alipay.trade.create":
            buyer_id = text(biz, "buyer_id", 28, required=not biz.get("buyer_open_id"))
            if buyer_id and not BUYER_ID.fullmatch(buyer_id):
                raise invalid("buyer_id", "须为 2088 开头的 16 位支付宝用户号")
        elif api_method == "alipay.trade.pay":
            scene = text(biz, "scene", 32)
            if scene not in ("bar_code", "security_code", "wave_code"):
                raise invalid("scene", "须为 bar_code、security_code 或 wave_code")
            auth_code = text(biz, "auth_code", 32)
            if not AUTH_CODE.fullmatch(auth_code):
                raise business(
                    "ACQ.PAYMENT_AUTH_CODE_INVALID",
                    "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款",
                )
        fingerprint = {"method": api_method, "total": total, "buyer_id": buyer_id}
        existing = self._trades.get((app_id, out_trade_no))
        if existing is not None:
            self._check_repeat(existing, fingerprint)
            return existing, False
        trade = Trade(
            app_id=app_id,
            seller_id=seller_id,
            out_trade_no=out_trade_no,
            api_method=api_method,
            subject=subject,
            total=total,
            fingerprint=fingerprint,
            trade_no=now.astimezone(BEIJING).strftime("%Y%m%d") + "22001" + self.digits(15),
            created_at=now,
            notify_url=notify_url,
            return_url=return_url,
            time_expire=expires,
            buyer_id=buyer_id,
            auth_code=auth_code,
        )
        if api_method == "alipay.trade.precreate":
            trade.code = "https://qr.alipay.com/bax0" + self.token(20)
        elif api_method == "alipay.trade.create":
            trade.code = trade.trade_no
        elif api_method == "alipay.trade.pay":
            assert auth_code is not None
            trade.code = auth_code
        self._trades[(app_id, out_trade_no)] = trade
        self._by_trade_no[(app_id, trade.trade_no)] = trade
        if trade.code:
            self._by_code[trade.code] = trade
        return trade, True

    def _check_repeat(self, trade: Trade, fingerprint: Mapping[str, Any]) -> None:
        self.expire(trade)
        if trade.status in PAID:
            raise business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        if trade.status == "TRADE_CLOSED":
            raise business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if trade.fingerprint != fingerprint:
            raise business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")

    def needs_confirmation(self, trade: Trade) -> bool:
        return trade.auth_code is not None and trade.auth_code.startswith(CONFIRM_PREFIX)

    def find(self, app_id: str, biz: Mapping[str, Any]) -> Trade:
        """The trade `trade_no` (preferred) or `out_trade_no` names. Raises `AlipayError`."""
        trade_no = text(biz, "trade_no", 64, required=False)
        out_trade_no = text(biz, "out_trade_no", 64, required=False)
        if not trade_no and not out_trade_no:
            raise missing("out_trade_no 或 trade_no")
        if trade_no:
            trade = self._by_trade_no.get((app_id, trade_no))
        else:
            trade = self._trades.get((app_id, out_trade_no))
        if trade is None:
            raise trade_not_exist()
        self.expire(trade)
        return trade

    def get(self, app_id: str, out_trade_no: str) -> Trade | None:
        trade = self._trades.get((app_id, out_trade_no))
        if trade is not None:
            self.expire(trade)
        return trade

    def find_by_code(self, code: str) -> Trade | None:
        trade = self._by_code.get(code)
        if trade is not None:
            self.expire(trade)
        return trade

    def expire(self, trade: Trade) -> None:
        """Close an unpaid trade whose `time_expire` has passed (Alipay closes it then)."""
        expires = trade.time_expire
        if trade.status == "WAIT_BUYER_PAY" and expires is not None and expires <= self._now():
            trade.status = "TRADE_CLOSED"
            trade.gmt_close = expires

    def pay(self, trade: Trade, buyer_id: str | None = None) -> None:
        """The buyer paid. Raises `AlipayError` if the trade cannot be paid."""
        self._check_payable(trade)
        trade.status = "TRADE_SUCCESS"
        trade.gmt_payment = self._now()
        trade.buyer_id = trade.buyer_id or buyer_id or SANDBOX_BUYER_ID

    def decline(self, trade: Trade) -> None:
        """The buyer's payment failed and the trade closed."""
        self._check_payable(trade)
        trade.status = "TRADE_CLOSED"
        trade.gmt_close = self._now()

    def _check_payable(self, trade: Trade) -> None:
        self.expire(trade)
        if trade.status != "WAIT_BUYER_PAY":
            raise business("ACQ.TRADE_STATUS_ERROR", f"交易状态为 {trade.status}，无法支付")

    def close(self, trade: Trade) -> None:
        """Merchant close: refused for a paid trade, repeatable otherwise."""
        if trade.status in PAID:
            raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.status != "TRADE_CLOSED":
            trade.status = "TRADE_CLOSED"
            trade.gmt_close = self._now()

    def refund(
        self, trade: Trade, biz: Mapping[str, Any], *, fail: bool = False
    ) -> tuple[Refund, bool]:
        """Refund part of a paid trade; the bool says whether money moved (`fund_change`).

        `fail` is the `refund_fail_rate` fault striking: Alipay refunds synchronously, so a
        failing refund is refused at once (ACQ.SELLER_BALANCE_NOT_ENOUGH), nothing moved.
        """
        refund_fen = amount(biz, "refund_amount")
        out_request_no = text(biz, "out_request_no", 64, required=False) or trade.out_trade_no
        if not OUT_REQUEST_NO.fullmatch(out_request_no):
            raise invalid("out_request_no", "仅支持字母、数字、下划线和 -")
        existing = trade.refunds.get(out_request_no)
        if existing is not None:
            if existing.amount != refund_fen:
                raise business("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致")
            return existing, False
        if trade.status == "TRADE_FINISHED":
            raise business("ACQ.TRADE_HAS_FINISHED", "交易已完结")
        if trade.status != "TRADE_SUCCESS":
            raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.refunded + refund_fen > trade.total:
            raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        if fail:
            raise business("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
        now = self._now()
        refund = Refund(
            out_request_no, refund_fen, text(biz, "refund_reason", 256, required=False), now
        )
        trade.refunds[out_request_no] = refund
        if trade.refunded == trade.total:
            trade.status = "TRADE_CLOSED"
            trade.gmt_close = now
        return refund, True


def _expiry(biz: Mapping[str, Any], now: datetime) -> datetime | None:
    time_expire = text(biz, "time_expire", 19, required=False)
    timeout = text(biz, "timeout_express", 8, required=False)
    expires: datetime | None = None
    if time_expire:
        try:
            expires = parse_time(time_expire)
        except ValueError:
            raise invalid("time_expire", "须为 yyyy-MM-dd HH:mm:ss") from None
    elif timeout:
        match = TIMEOUT_EXPRESS.fullmatch(timeout)
        if match is None:
            raise invalid("timeout_express", "取值范围 1m～15d，或 1c")
        if timeout == "1c":
            local = now.astimezone(BEIJING)
            expires = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        else:
            unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
            expires = now + timedelta(**{unit: int(match.group(1))})
    if expires is not None and expires <= now:
        raise invalid("time_expire", "须晚于当前时间")
    return expires
