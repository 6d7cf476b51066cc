"""The UnionPay simulator's running state: accounts, transactions, faults and notifications.

`channels.unionpay.sim.app` holds the HTTP side; this module decides what happens: who a
signed request comes from, what paying does, and how notifications are delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from aiohttp import web

from channels.sim.kit import SimulatorSettings
from channels.sim.state import SimulatorCore
from channels.unionpay import crypto
from channels.unionpay.notification import ACCEPTED_STATUSES, RETRY_SCHEDULE
from channels.unionpay.protocol import codes, wire
from channels.unionpay.sandbox import SandboxAccount, ensure_sandbox
from channels.unionpay.sim.orders import Txn, TxnBook, UnionPayError

REPORTED_AMOUNTS = frozenset({"txnAmt", "settleAmt"})
"""Fields that say how much a transaction is for (fen)."""
ATTEMPT_TIMEOUT = 10.0
"""Seconds UnionPay waits for the merchant's HTTP 200 before counting an attempt as failed."""


class UnionPaySimulator(SimulatorCore[SandboxAccount]):
    """The state of one running simulator."""

    def __init__(self, settings: SimulatorSettings) -> None:
        super().__init__(
            settings,
            schedule=RETRY_SCHEDULE,
            success=lambda status, body: status in ACCEPTED_STATUSES,
            attempt_timeout=ATTEMPT_TIMEOUT,
        )
        self.book = TxnBook(self.rng, lambda: datetime.now(wire.BEIJING))

    def load_account(self, index: int = 0) -> SandboxAccount:
        return ensure_sandbox(self.settings.sandbox_dir, index)

    def account_id(self, account: SandboxAccount) -> str:
        return account.mer_id

    def reported(self, fields: Mapping[str, str]) -> dict[str, str]:
        """Answer or notification fields as sent, `txnAmt` and `settleAmt` shifted by the
        `misreport_amount` fault (the transaction keeps its real amount)."""
        out = dict(fields)
        if self.faults.faults.misreport_amount:
            for name in REPORTED_AMOUNTS.intersection(out):
                if out[name].isascii() and out[name].isdigit():  # a refusal echoes any value
                    out[name] = str(self.faults.reported(int(out[name])))
        return out

    def sign(self, fields: Mapping[str, str]) -> dict[str, str]:
        """`fields` with the channel's `signPubKeyCert` and `signature` added."""
        account = self.default_account()
        out = {**fields, crypto.CERT_FIELD: account.channel_cert_pem}
        out[crypto.SIGNATURE_FIELD] = crypto.sign(out, account.channel_key)
        return out

    def authenticate(self, fields: Mapping[str, str]) -> SandboxAccount:
        """The merchant whose registered certificate signed `fields`. Raises `UnionPayError`."""
        account = self.accounts.get(fields["merId"])
        if account is None:
            raise UnionPayError("31", "merId")
        credentials = account.credentials
        if fields["certId"] != credentials.cert_id:
            raise UnionPayError("11", "certId")
        try:
            crypto.verify(fields, crypto.public_key(credentials.signing_certificate))
        except crypto.VerificationError:
            raise UnionPayError("11", "signature") from None
        return account

    def buyer_pays(self, txn: Txn) -> str:
        """The buyer pays (or, by the decline rate, fails to). Raises `UnionPayError`."""
        if self.faults.chance(self.faults.faults.decline_rate):
            self.book.decline(txn)
        else:
            self.book.pay(txn)
            self.notify(txn)
        return txn.state

    def notify(self, txn: Txn) -> None:
        """Start posting the transaction's result to its `backUrl`, if it has one."""
        url = txn.request.get("backUrl")
        if not url:
            return
        fields = {**txn.fields(), "respCode": "00", "respMsg": codes.message("00")}
        if txn.kind != "refund":
            fields.update(payType="0001", payCardType="01", accNo="6216***********0018")
        body = wire.encode_form(self.sign(self.reported(fields)))

        def headers(raw: bytes) -> dict[str, str]:
            return {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}

        txn.deliveries += self.submit_notification(txn.query_id, url, body, headers)

    def after(self, seconds: float, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` after `seconds` of channel time (scaled), unless shut down first."""

        async def later() -> None:
            await asyncio.sleep(self.settings.scaled(seconds))
            await action()

        self.start(later())

    def schedule_auto_pay(self, txn: Txn) -> None:
        """The `auto_pay_after_ms` fault: the buyer pays a new order by themselves."""
        self._pay_later(txn, self.faults.faults.auto_pay_after_ms)

    def schedule_password_entry(self, txn: Txn) -> None:
        """A payment-code buyer asked for a password enters it after `password_entry_ms`;
        with `None` the payment waits for `POST /sim/buyer/pay`."""
        self._pay_later(txn, self.faults.faults.password_entry_ms)

    def _pay_later(self, txn: Txn, after_ms: int | None) -> None:
        if after_ms is None:
            return

        async def pay() -> None:
            if txn.state == "waiting":
                # Closed or expired meanwhile: a real buyer could not pay either.
                with contextlib.suppress(UnionPayError):
                    self.buyer_pays(txn)

        self.after(after_ms / 1000, pay)

    def schedule_refund(self, txn: Txn) -> None:
        """An accepted refund ends after `refund_delay_ms` (at once for 0)."""
        delay_ms = self.faults.faults.refund_delay_ms
        if not delay_ms:
            self.end_refund(txn)
            return

        async def later() -> None:
            self.end_refund(txn)

        self.after(delay_ms / 1000, later)

    def end_refund(self, txn: Txn) -> None:
        """A processing refund succeeds, and is notified, or by `refund_fail_rate` fails
        (not notified, like failed payments)."""
        if txn.state != "processing":
            return
        failed = self.faults.chance(self.faults.faults.refund_fail_rate)
        self.book.finish_refund(txn, succeeded=not failed)
        if not failed:
            self.notify(txn)


SIMULATOR = web.AppKey("unionpay_simulator", UnionPaySimulator)
