"""The WeChat Pay simulator's order book: validation, idempotent create, buyer actions.

No HTTP here: `channels.wechat.sim.app` turns `WeChatError` into WeChat's error answers and
orders into JSON. Rules follow WeChat's documented behaviour: a repeated create with the same
`out_trade_no` and the same parameters returns the same code (only the payer's IP may change);
different parameters are refused ("201 商户订单号重复"); paid and closed orders refuse both.
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
from channels.wechat.protocol.wire import CHINA_TIME, format_time, parse_time

KINDS = ("native", "h5", "jsapi", "app", "codepay")
TRADE_TYPE_NAMES = {
    "native": "NATIVE",
    "h5": "MWEB",
    "jsapi": "JSAPI",
    "app": "APP",
    "codepay": "MICROPAY",
}
STATE_DESCRIPTIONS = {
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "NOTPAY": "未支付",
    "CLOSED": "已关闭",
    "REVOKED": "已撤销",
    "USERPAYING": "用户支付中",
    "PAYERROR": "支付失败",
}
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
AUTH_CODE = re.compile(r"1[0-5][0-9]{16}")
"""A WeChat payment code: 18 digits starting 10 to 15."""
PASSWORD_AUTH_CODE = re.compile(r"15[0-9]{16}")
"""Payment codes for which the simulated buyer must enter a password (202 `USERPAYING`)."""
_ALNUM = string.ascii_letters + string.digits


class WeChatError(Exception):
    """An error answer: HTTP status, WeChat code, message and optional detail."""

    def __init__(
        self, status: int, code: str, message: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            out["detail"] = dict(self.detail)
        return out


def param_error(
    field_path: str, issue: str, value: object = None, *, location: str = "body"
) -> WeChatError:
    """400 PARAM_ERROR naming the field, in WeChat's `detail` shape."""
    detail: dict[str, Any] = {"field": field_path, "location": location, "issue": issue}
    if value is not None and not isinstance(value, (dict, list)):
        detail["value"] = value
    return WeChatError(400, "PARAM_ERROR", f"参数错误: {field_path} {issue}", detail)


@dataclass
class Order:
    """One order at the simulated WeChat Pay."""

    mchid: str
    appid: str
    out_trade_no: str
    kind: str
    signature: dict[str, Any]
    """The create parameters that must match on a repeated create."""
    description: str
    total: int
    currency: str
    notify_url: str | None
    attach: str | None
    time_expire: datetime | None
    created_at: datetime
    code: str
    """What identifies the order to the buyer: code_url, h5_url, prepay_id or auth_code."""
    prepay_id: str | None = None
    openid: str | None = None
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: datetime | None = None
    deliveries: list[Delivery] = field(default_factory=list)

    def create_answer(self) -> dict[str, Any]:
        """The body of a successful create answer."""
        if self.kind == "native":
            return {"code_url": self.code}
        if self.kind == "h5":
            return {"h5_url": self.code}
        if self.kind == "codepay":
            return self.transaction()
        return {"prepay_id": self.prepay_id}

    def transaction(self) -> dict[str, Any]:
        """The transaction object of a query answer or a notification resource."""
        amount: dict[str, Any] = {"total": self.total, "currency": self.currency}
        amount["payer_currency"] = self.currency
        data: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": TRADE_TYPE_NAMES[self.kind],
            "trade_state": self.trade_state,
            "trade_state_desc": STATE_DESCRIPTIONS[self.trade_state],
            "attach": self.attach or "",
            "amount": amount,
            "promotion_detail": [],
        }
        if self.transaction_id:
            data["transaction_id"] = self.transaction_id
            data["bank_type"] = "OTHERS"
        if self.openid:
            data["payer"] = {"openid": self.openid}
        if self.success_time is not None:
            data["success_time"] = format_time(self.success_time)
            amount["payer_total"] = self.total
        return data

    def as_dict(self) -> dict[str, Any]:
        """The `/sim/orders/{out_trade_no}` view, notification attempts included."""
        return {
            "order": self.transaction(),
            "code": self.code,
            "notify_url": self.notify_url,
            "created_at": format_time(self.created_at),
            "time_expire": format_time(self.time_expire) if self.time_expire else None,
            "notifications": [delivery.as_dict() for delivery in self.deliveries],
        }


def _text(body: Mapping[str, Any], name: str, max_len: int, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise param_error(f"/{name}", "必填 (required string)")
    if len(value) > max_len:
        raise param_error(f"/{name}", f"长度超过 {max_len}", value)
    return value


def _object(body: Mapping[str, Any], path: str, *, required: bool = True) -> dict[str, Any]:
    node: Any = body
    for name in path.split("/"):
        node = node.get(name) if isinstance(node, Mapping) else None
    if node is None and not required:
        return {}
    if not isinstance(node, dict):
        raise param_error(f"/{path}", "必填 (required object)")
    return node


def validate_create(kind: str, body: Mapping[str, Any], now: datetime) -> None:
    """Check a create request's fields. Raises `WeChatError(400, "PARAM_ERROR")`."""
    _text(body, "appid", 32)
    _text(body, "mchid", 32)
    _text(body, "description", 127)
    out_trade_no = _text(body, "out_trade_no", 32)
    if not OUT_TRADE_NO.fullmatch(out_trade_no):
        raise param_error("/out_trade_no", "6-32 位数字、大小写字母或 _-|*", out_trade_no)
    _text(body, "attach", 128, required=False)
    if kind != "codepay":
        notify_url = _text(body, "notify_url", 255)
        if not notify_url.startswith(("https://", "http://")) or "?" in notify_url:
            raise param_error("/notify_url", "须为不带参数的 http(s) 地址", notify_url)
    amount = _object(body, "amount")
    total = amount.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
        raise param_error("/amount/total", "须为大于 0 的整数 (fen)", total)
    if amount.get("currency", "CNY") != "CNY":
        raise param_error("/amount/currency", "仅支持 CNY", amount.get("currency"))
    time_expire = body.get("time_expire")
    if time_expire is not None:
        try:
            expires = parse_time(time_expire) if isinstance(time_expire, str) else None
        except ValueError:
            expires = None
        if expires is None:
            raise param_error("/time_expire", "须为 RFC 3339 时间", time_expire)
        if expires <= now:
            raise param_error("/time_expire", "须晚于当前时间", time_expire)
    if kind == "h5":
        _text(_object(body, "scene_info"), "payer_client_ip", 45)
        _text(_object(body, "scene_info/h5_info"), "type", 32)
    elif kind == "jsapi":
        _text(_object(body, "payer"), "openid", 128)
    elif kind == "codepay":
        auth_code = _text(_object(body, "payer"), "auth_code", 32)
        if not AUTH_CODE.fullmatch(auth_code):
            raise WeChatError(
                400,
                "AUTH_CODE_INVALID",
                "请扫描微信支付授权码(以10/11/12/13/14/15为前缀的18位数字)",
                {"field": "/payer/auth_code", "location": "body", "value": auth_code},
            )


def _signature(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    # WeChat lets the payer's IP change between repeats; every other parameter must match.
    copy = {key: value for key, value in body.items() if key != "scene_info"}
    scene = {k: v for k, v in dict(body.get("scene_info") or {}).items() if k != "payer_client_ip"}
    return {"kind": kind, "body": copy, "scene_info": scene}


class OrderBook:
    """Every order the simulator knows, with the indexes buyers and queries need."""

    def __init__(self, rng: random.Random, now: Callable[[], datetime]) -> None:
        self._rng = rng
        self._now = now
        self._orders: dict[tuple[str, str], Order] = {}
        self._by_code: dict[str, Order] = {}
        self._by_transaction: dict[tuple[str, str], Order] = {}

    def __iter__(self) -> Any:
        return iter(list(self._orders.values()))

    def now(self) -> datetime:
        return self._now()

    def create(
        self, kind: str, mchid: str, appid: str, body: Mapping[str, Any], h5_base: str
    ) -> tuple[Order, bool]:
        """The order for a validated create request, and whether it is new."""
        if body.get("mchid") != mchid:
            raise WeChatError(400, "INVALID_REQUEST", "请求参数 mchid 与认证信息中的商户号不一致")
        if body.get("appid") != appid:
            raise WeChatError(400, "APPID_MCHID_NOT_MATCH", "AppID 和 mch_id 不匹配")
        now = self._now()
        validate_create(kind, body, now)
        signature = _signature(kind, body)
        existing = self._orders.get((mchid, body["out_trade_no"]))
        if existing is not None:
            self._check_repeat(existing, signature)
            return existing, False
        order = self._new_order(kind, mchid, appid, body, signature, now, h5_base)
        self._orders[(mchid, order.out_trade_no)] = order
        if order.code:
            self._by_code[order.code] = order
        if order.prepay_id:
            self._by_code[order.prepay_id] = order
        return order, True

    def _check_repeat(self, order: Order, signature: dict[str, Any]) -> None:
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise WeChatError(403, "ORDERPAID", "该订单已支付")
        if order.trade_state in ("CLOSED", "REVOKED"):
            raise WeChatError(400, "ORDER_CLOSED", "订单已关闭")
        if order.signature != signature:
            raise WeChatError(400, "INVALID_REQUEST", "201 商户订单号重复")

    def _new_order(
        self,
        kind: str,
        mchid: str,
        appid: str,
        body: Mapping[str, Any],
        signature: dict[str, Any],
        now: datetime,
        h5_base: str,
    ) -> Order:
        expires = body.get("time_expire")
        payer = body.get("payer") or {}
        order = Order(
            mchid=mchid,
            appid=appid,
            out_trade_no=body["out_trade_no"],
            kind=kind,
            signature=signature,
            description=body["description"],
            total=body["amount"]["total"],
            currency=body["amount"].get("currency", "CNY"),
            notify_url=body.get("notify_url"),
            attach=body.get("attach"),
            time_expire=parse_time(expires) if isinstance(expires, str) else None,
            created_at=now,
            code="",
            openid=payer.get("openid"),
        )
        if kind == "codepay":
            order.code = payer["auth_code"]
        if kind == "native":
            order.code = "weixin://wxpay/bizpayurl?pr=" + self._token(7, _ALNUM)
        elif kind in ("h5", "jsapi", "app"):
            stamp = now.astimezone(CHINA_TIME).strftime("%Y%m%d%H%M%S")
            order.prepay_id = f"wx{stamp}{self._token(20, '0123456789abcdef')}"
            order.code = order.prepay_id
            if kind == "h5":
                package = self._token(10, string.digits)
                order.code = (
                    f"{h5_base.rstrip('/')}/sim/h5/checkmweb"
                    f"?prepay_id={order.prepay_id}&package={package}"
                )
        return order

    def _token(self, length: int, alphabet: str) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(length))

    def get(self, mchid: str, out_trade_no: str) -> Order | None:
        return self._orders.get((mchid, out_trade_no))

    def get_by_transaction(self, mchid: str, transaction_id: str) -> Order | None:
        return self._by_transaction.get((mchid, transaction_id))

    def find_by_code(self, code: str) -> Order | None:
        """The order a buyer's code belongs to (code_url, h5_url or prepay_id)."""
        return self._by_code.get(code)

    def pay(self, order: Order) -> None:
        """The buyer paid: SUCCESS with a transaction id. Raises `WeChatError` if unpayable."""
        self._check_payable(order)
        now = self._now()
        order.trade_state = "SUCCESS"
        order.success_time = now
        stamp = now.astimezone(CHINA_TIME).strftime("%Y%m%d")
        order.transaction_id = f"42000{self._token(5, string.digits)}{stamp}"
        order.transaction_id += self._token(10, string.digits)
        order.openid = order.openid or "o" + self._token(27, _ALNUM + "-_")
        self._by_transaction[(order.mchid, order.transaction_id)] = order

    def decline(self, order: Order) -> None:
        """The buyer's payment failed (bank refused): PAYERROR, no notification."""
        self._check_payable(order)
        order.trade_state = "PAYERROR"

    def close(self, order: Order) -> None:
        """Merchant close: refused for a paid order, repeatable otherwise."""
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise WeChatError(403, "ORDERPAID", "订单已支付，无法关闭")
        order.trade_state = "CLOSED"

    def await_password(self, order: Order) -> None:
        """A barcode payment that needs the buyer's password: USERPAYING until they enter it."""
        self._check_payable(order)
        order.trade_state = "USERPAYING"

    def _check_payable(self, order: Order) -> None:
        if order.trade_state not in ("NOTPAY", "USERPAYING"):
            raise WeChatError(409, "ORDER_STATE", f"订单状态为 {order.trade_state}，无法支付")
        if order.time_expire is not None and order.time_expire <= self._now():
            raise WeChatError(409, "ORDER_EXPIRED", "订单已过期")
