"""The Alipay simulator's running state: apps, trades, faults and notifications.

`channels.alipay.sim.app` holds the HTTP side; this module decides what happens: whether a
request's common parameters and RSA2 signature are good, what a buyer paying does, and how a
notification is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from channels.alipay.crypto import (
    SIGN_TYPE,
    build_answer,
    request_signing_string,
    sign_notification,
    verify_request,
)
from channels.alipay.protocol.wire import BEIJING, fen_to_yuan, yuan_to_fen
from channels.alipay.sandbox import SandboxAccount, ensure_sandbox
from channels.alipay.sim import bill
from channels.alipay.sim.orders import (
    BROWSER_METHODS,
    AlipayError,
    Refund,
    Trade,
    TradeBook,
    business,
)
from channels.sim.bills import BillDesk
from channels.sim.kit import SimulatorSettings
from channels.sim.state import SimulatorCore

RETRY_SCHEDULE: tuple[float, ...] = (240, 600, 600, 3600, 7200, 21600, 54000)
"""Seconds between notification attempts: 4m, 10m, 10m, 1h, 2h, 6h, 15h."""

REPORTED_AMOUNTS = frozenset(
    {
        "total_amount",
        "buyer_pay_amount",
        "receipt_amount",
        "invoice_amount",
        "refund_amount",
        "refund_fee",
    }
)
"""Answer and notification fields that say how much a trade or refund is for (yuan)."""

TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def gateway_error(code: str, sub_code: str, sub_msg: str) -> AlipayError:
    msg = {"40001": "Missing Required Arguments", "40002": "Invalid Arguments"}[code]
    return AlipayError(code, msg, sub_code, sub_msg, gateway=True)


def unavailable() -> AlipayError:
    return AlipayError("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")


def notification_accepted(status: int, body: bytes) -> bool:
    """Alipay's rule: the merchant printed exactly `success`."""
    return status == 200 and body == b"success"


def parse_biz(params: Mapping[str, str]) -> dict[str, Any]:
    """`biz_content` as an object; numbers kept exact. Raises `AlipayError`."""
    raw = params.get("biz_content", "")
    if not raw:
        return {}
    try:
        biz = json.loads(raw, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise business("ACQ.INVALID_PARAMETER", "参数无效: biz_content 不是合法的 JSON") from None
    if not isinstance(biz, dict):
        raise business("ACQ.INVALID_PARAMETER", "参数无效: biz_content 须为 JSON 对象")
    return biz


class AlipaySimulator(SimulatorCore[SandboxAccount]):
    """The state of one running simulator."""

    def __init__(self, settings: SimulatorSettings, methods: frozenset[str]) -> None:
        super().__init__(settings, schedule=RETRY_SCHEDULE, success=notification_accepted)
        self.methods = methods
        """Every API method the gateway knows."""
        self.trades = TradeBook(self.rng, lambda: datetime.now(BEIJING))
        self.bills = BillDesk[bill.Bill](self.rng, token_length=32)

    def load_account(self, index: int = 0) -> SandboxAccount:
        return ensure_sandbox(self.settings.sandbox_dir, index)

    def account_id(self, account: SandboxAccount) -> str:
        return account.app_id

    def account_for(self, params: Mapping[str, str]) -> SandboxAccount:
        """The app a request names. Raises `AlipayError` (gateway, unsigned: no app known)."""
        app_id = params.get("app_id", "")
        if not app_id:
            raise gateway_error("40001", "isv.missing-app-id", "缺少AppID参数")
        account = self.accounts.get(app_id)
        if account is None:
            raise gateway_error("40002", "isv.invalid-app-id", "无效的AppID参数")
        return account

    def check_request(self, account: SandboxAccount, params: Mapping[str, str]) -> str:
        """Check the common parameters and the signature; the API method. Raises `AlipayError`."""
        method = params.get("method", "")
        if not method:
            raise gateway_error("40001", "isv.missing-method", "缺少方法名参数")
        if method not in self.methods:
            raise gateway_error("40002", "isv.invalid-method", "不存在的方法名")
        charset = params.get("charset", "utf-8")
        if charset.lower() not in ("utf-8", "utf8"):
            raise gateway_error("40002", "isv.invalid-charset", "字符集错误，仅支持 utf-8")
        timestamp = params.get("timestamp", "")
        if not timestamp:
            raise gateway_error("40001", "isv.missing-timestamp", "缺少时间戳参数")
        if TIMESTAMP.fullmatch(timestamp) is None:
            raise gateway_error("40002", "isv.invalid-timestamp", "非法的时间戳参数")
        if params.get("version", "1.0") != "1.0":
            raise gateway_error("40002", "isv.invalid-version", "版本号仅支持 1.0")
        if not params.get("sign"):
            raise gateway_error("40001", "isv.missing-signature", "缺少签名参数")
        sign_type = params.get("sign_type", "")
        if not sign_type:
            raise gateway_error("40001", "isv.missing-signature-type", "缺少签名类型参数")
        if sign_type != SIGN_TYPE:
            raise gateway_error("40002", "isv.invalid-signature-type", "签名类型仅支持 RSA2")
        if not verify_request(account.app_public_key, params):
            # Like Alipay, show the string the gateway verified so a client can diff its own.
            raise gateway_error(
                "40002",
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
                + request_signing_string(params),
            )
        return method

    def reported(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """An answer's or notification's fields as sent, the amounts shifted by the
        `misreport_amount` fault (the trade keeps its real amounts)."""
        out = dict(fields)
        if self.faults.faults.misreport_amount:
            for name in REPORTED_AMOUNTS.intersection(out):
                with contextlib.suppress(ValueError):  # only amounts the simulator wrote
                    out[name] = fen_to_yuan(self.faults.reported(yuan_to_fen(out[name])))
        return out

    def answer(
        self, account: SandboxAccount | None, name: str, payload: Mapping[str, Any]
    ) -> bytes:
        """An answer body, signed with Alipay's key for the app (unsigned for no app)."""
        key = account.alipay_private_key if account is not None else None
        return build_answer(key, name, payload)

    def open_signed(self, params: Mapping[str, str]) -> Trade:
        """The buyer opens a page/wap URL or an app order string. Raises `AlipayError`."""
        account = self.account_for(params)
        method = self.check_request(account, params)
        if method not in BROWSER_METHODS:
            raise gateway_error("40002", "isv.invalid-method", f"{method} 不能由买家打开")
        trade, new = self.trades.open(
            method,
            account.app_id,
            account.seller_id,
            parse_biz(params),
            notify_url=params.get("notify_url") or None,
            return_url=params.get("return_url") or None,
        )
        if new:
            self.schedule_auto_pay(trade)
        return trade

    def resolve_code(self, code: str) -> Trade | None:
        """The trade whatever the buyer was given belongs to. Raises `AlipayError`."""
        trade = self.trades.find_by_code(code)
        if trade is not None or "method=" not in code:
            return trade
        query = code.split("?", 1)[1] if "?" in code else code
        pairs = parse_qsl(query, keep_blank_values=True)
        return self.open_signed(dict(pairs))

    def buyer_pays(self, trade: Trade) -> None:
        """The buyer pays (or, by the decline rate, fails to). Raises `AlipayError`."""
        if self.faults.chance(self.faults.faults.decline_rate):
            self.buyer_declines(trade)
            return
        self.trades.pay(trade)
        self.notify(trade)

    def barcode_pays(self, trade: Trade) -> None:
        """A scanned barcode pays at once; a decline refuses the call. Raises `AlipayError`."""
        if self.faults.chance(self.faults.faults.decline_rate):
            self.trades.decline(trade)
            raise business("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足")
        self.trades.pay(trade)
        self.notify(trade)

    def buyer_declines(self, trade: Trade) -> None:
        """The buyer's payment fails: the trade closes (TRADE_CLOSED is notified)."""
        self.trades.decline(trade)
        self.notify(trade)

    def notify(self, trade: Trade, refund: Refund | None = None) -> None:
        """Start delivering a `trade_status_sync` notification for the trade's state now."""
        if not trade.notify_url:
            return
        account = self.accounts[trade.app_id]
        notify_id = f"{self.rng.getrandbits(128):032x}"
        fields = self.reported(trade.notification(notify_id, self.trades.now(), refund))
        body = _form(sign_notification(account.alipay_private_key, fields))

        def headers(raw: bytes) -> dict[str, str]:
            return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

        trade.deliveries += self.submit_notification(notify_id, trade.notify_url, body, headers)

    def schedule_auto_pay(self, trade: Trade) -> None:
        """Pay a new trade by itself after the `auto_pay_after_ms` fault, if set."""
        self._pay_later(trade, self.faults.faults.auto_pay_after_ms)

    def schedule_password_entry(self, trade: Trade) -> None:
        """A barcode buyer asked for their password enters it after `password_entry_ms`
        (unset: they wait for `POST /sim/buyer/pay`); `auto_pay_after_ms` may come first."""
        self._pay_later(trade, self.faults.faults.password_entry_ms)
        self.schedule_auto_pay(trade)

    def _pay_later(self, trade: Trade, after_ms: int | None) -> None:
        if after_ms is None:
            return
        self.start(self._auto_pay(trade, self.settings.scaled(after_ms / 1000)))

    async def _auto_pay(self, trade: Trade, delay: float) -> None:
        await asyncio.sleep(delay)
        # Closed or expired meanwhile: a real buyer could not pay either.
        with contextlib.suppress(AlipayError):
            self.buyer_pays(trade)


def _form(fields: Mapping[str, str]) -> bytes:
    return urlencode(fields).encode()


SIMULATOR = web.AppKey("alipay_simulator", AlipaySimulator)
