"""The WeChat Pay simulator's running state: accounts, orders, faults and notifications.

`channels.wechat.sim.app` holds the HTTP side; this module decides what happens: who a
signed request comes from, what paying an order does, and how its notification is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from channels.sim.bills import BillDesk
from channels.sim.kit import Delivery, SimulatorSettings
from channels.sim.state import SimulatorCore
from channels.wechat.crypto import (
    VerificationError,
    parse_authorization,
    request_message,
    sign_answer,
    verify_authorization,
)
from channels.wechat.notification import build_notification
from channels.wechat.protocol.wire import CHINA_TIME
from channels.wechat.sandbox import SandboxAccount, ensure_sandbox
from channels.wechat.sim import bill
from channels.wechat.sim.orders import PASSWORD_AUTH_CODE, Order, OrderBook, WeChatError
from channels.wechat.sim.refunds import EVENTS, Refund, RefundBook

RETRY_SCHEDULE: tuple[float, ...] = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600)
RETRY_SCHEDULE += (10800, 10800, 10800, 21600, 21600)
"""Seconds between notification attempts: 15s,15s,30s,3m,10m,20m,30m×3,60m,3h×3,6h×2."""

_NONCE_ALPHABET = string.ascii_letters + string.digits
REPORTED_AMOUNTS = frozenset(
    {"total", "payer_total", "refund", "payer_refund", "settlement_total", "settlement_refund"}
)
"""The fields of `amount` that say how much an order or refund is for."""


class WeChatSimulator(SimulatorCore[SandboxAccount]):
    """The state of one running simulator: accounts, orders, faults, notifications."""

    def __init__(self, settings: SimulatorSettings) -> None:
        super().__init__(
            settings, schedule=RETRY_SCHEDULE, success=lambda status, body: 200 <= status < 300
        )
        self.orders = OrderBook(self.rng, lambda: datetime.now(CHINA_TIME))
        self.refunds = RefundBook(self.rng, self.orders.now)
        self.bills = BillDesk[bill.Bill](self.rng, token_length=40)

    def load_account(self, index: int = 0) -> SandboxAccount:
        return ensure_sandbox(self.settings.sandbox_dir, index)

    def account_id(self, account: SandboxAccount) -> str:
        return account.mchid

    def reported(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A transaction or refund object as sent, its amounts shifted by the
        `misreport_amount` fault (the order keeps its real amounts)."""
        out = dict(data)
        amount = out.get("amount")
        if self.faults.faults.misreport_amount and isinstance(amount, dict):
            out["amount"] = {
                name: self.faults.reported(value) if name in REPORTED_AMOUNTS else value
                for name, value in amount.items()
            }
        return out

    def request_id(self) -> str:
        return f"{self.rng.getrandbits(128):032X}"

    def sign(self, account: SandboxAccount, body: bytes) -> dict[str, str]:
        """The five `Wechatpay-*` headers for `body`, signed with the platform key."""
        return sign_answer(
            account.platform_private_key,
            account.credentials.platform_public_key_id,
            body,
            timestamp=int(time.time()),
            nonce=secrets.token_hex(16).upper(),
        )

    async def authenticate(self, request: web.Request) -> SandboxAccount:
        """The merchant whose valid signature the request carries. Raises `WeChatError`."""
        header = request.headers.get("Authorization", "")
        if not header:
            raise WeChatError(401, "SIGN_ERROR", "签名错误: 缺少 Authorization 头")
        try:
            auth = parse_authorization(header)
        except VerificationError as exc:
            raise WeChatError(401, "SIGN_ERROR", f"签名错误: {exc.message}") from None
        account = self.accounts.get(auth.mchid)
        if account is None:
            raise WeChatError(401, "SIGN_ERROR", f"签名错误: 商户号 {auth.mchid} 不存在")
        if auth.serial_no.upper() != account.credentials.merchant_serial_no.upper():
            raise WeChatError(401, "SIGN_ERROR", "签名错误: 商户证书序列号不正确")
        body = await request.read()
        try:
            verify_authorization(
                auth,
                account.merchant_public_key,
                method=request.method,
                path_with_query=request.raw_path,
                body=body,
                now=time.time(),
            )
        except VerificationError as exc:
            # Like WeChat, say what was verified so a client can diff its own message.
            message = request_message(
                request.method, request.raw_path, auth.timestamp, auth.nonce_str, body
            )
            detail = {
                "sign_information": {
                    "method": request.method,
                    "url": request.raw_path,
                    "timestamp": auth.timestamp,
                    "nonce_str": auth.nonce_str,
                    "sign_message_length": len(message),
                    "issue": exc.message,
                }
            }
            raise WeChatError(401, "SIGN_ERROR", "签名错误，请检查后再试", detail) from None
        return account

    def buyer_pays(self, order: Order) -> str:
        """The buyer pays (or, by the decline rate, fails to). Raises `WeChatError`."""
        if self.faults.chance(self.faults.faults.decline_rate):
            self.orders.decline(order)
        else:
            self.orders.pay(order)
            self.notify(order)
        return order.trade_state

    def scan_payment_code(self, order: Order) -> None:
        """A new codepay order: paid at once, or waiting for the buyer's password."""
        if not PASSWORD_AUTH_CODE.fullmatch(order.code):
            self.buyer_pays(order)
            return
        self.orders.await_password(order)
        entry_ms = self.faults.faults.password_entry_ms
        if entry_ms is not None:
            self.start(self._buyer_acts(order, self.settings.scaled(entry_ms / 1000)))

    def notify(self, order: Order) -> None:
        """Start delivering the order's `TRANSACTION.SUCCESS` notification."""
        if order.notify_url:
            order.deliveries += self._deliver(
                order.mchid,
                order.notify_url,
                resource=self.reported(order.transaction()),
                event=("TRANSACTION.SUCCESS", "支付成功"),
                original_type="transaction",
            )

    def apply_refund(self, mchid: str, body: Mapping[str, Any]) -> Refund:
        """Accept (or find again) a refund; a new one ends after the refund delay."""
        refund, new = self.refunds.apply(self.orders, mchid, body)
        if new:
            delay = self.settings.scaled(self.faults.faults.refund_delay_ms / 1000)
            self.start(self._finish_refund(refund, delay))
        return refund

    async def _finish_refund(self, refund: Refund, delay: float) -> None:
        await asyncio.sleep(delay)
        failed = self.faults.chance(self.faults.faults.refund_fail_rate)
        self.refunds.finish(refund, succeeded=not failed)
        if refund.notify_url:
            refund.deliveries += self._deliver(
                refund.mchid,
                refund.notify_url,
                resource=self.reported(refund.resource()),
                event=EVENTS[refund.status],
                original_type="refund",
            )

    def _deliver(
        self,
        mchid: str,
        url: str,
        *,
        resource: Mapping[str, Any],
        event: tuple[str, str],
        original_type: str,
    ) -> list[Delivery]:
        """Seal `resource` into a signed notification and post it on the retry schedule."""
        account = self.accounts[mchid]
        notification_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        nonce = "".join(self.rng.choice(_NONCE_ALPHABET) for _ in range(12))
        event_type, summary = event
        body = build_notification(
            notification_id=notification_id,
            create_time=self.orders.now(),
            resource=resource,
            apiv3_key=account.credentials.apiv3_key.get_secret_value(),
            nonce=nonce,
            event_type=event_type,
            summary=summary,
            original_type=original_type,
        )

        def headers(raw: bytes) -> dict[str, str]:
            return {"Content-Type": "application/json", **self.sign(account, raw)}

        return self.submit_notification(notification_id, url, body, headers)

    def schedule_auto_pay(self, order: Order) -> None:
        after_ms = self.faults.faults.auto_pay_after_ms
        if after_ms is not None:
            self.start(self._buyer_acts(order, self.settings.scaled(after_ms / 1000)))

    async def _buyer_acts(self, order: Order, delay: float) -> None:
        await asyncio.sleep(delay)
        if order.trade_state in ("NOTPAY", "USERPAYING"):
            # Expired meanwhile: a real buyer could not pay either.
            with contextlib.suppress(WeChatError):
                self.buyer_pays(order)


SIMULATOR = web.AppKey("wechat_simulator", WeChatSimulator)
ACCOUNT = web.RequestKey("wechat_account", SandboxAccount)
