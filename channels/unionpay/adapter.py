"""`UnionPayChannel`: one UnionPay ACP 5.1.0 account behind the `channels.base.Channel` contract.

The adapter only orchestrates: `protocol.requests` builds, `protocol.answers` reads, `channels.http`
sends. Every answer must carry a `signPubKeyCert` that chains to the configured middle and root
certificates and a signature made with it; one that does not is "we do not know what
happened" (`ChannelOutcomeUnknown`), never a success.

- `web` and `h5` make no call: the buyer's browser posts the signed form (`form_post`);
- `app` answers a `tn` (`app_params`), `qr` a `qrCode`; `03`/`04`/`05` there leave nothing
  to show the buyer, so they are `ChannelOutcomeUnknown` (the order may exist: query it);
- `barcode` is `SUCCEEDED` on `00` and `PENDING` on `03`/`04`/`05` (poll with `query`);
- a refund answered `00` is accepted, not done: `PENDING` until the notification or a query;
- `close`: UnionPay has no close for an unpaid order. The adapter queries; a paid order is
  refused (`ChannelRejected`), a failed or closed one is left alone, and anything else (waiting
  for the buyer, or never seen: a form not submitted) is voided (txnType 31), after which it
  can no longer be paid.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime

import aiohttp

from channels.adapter_base import ChannelAdapter
from channels.base import (
    Acknowledgement,
    Action,
    CreateOrder,
    CreateResult,
    Notification,
    OrderRef,
    RefundOrder,
    RefundStatus,
    StatementLine,
    TradeState,
    TradeStatus,
)
from channels.clock import Clock
from channels.errors import ChannelRejected
from channels.unionpay.config import (
    UnionPayAccount,
    UnionPayCredentials,
)
from channels.unionpay.crypto import TEST_OWNER, UNIONPAY_OWNER, ChainVerifier
from channels.unionpay.notification import parse_notification
from channels.unionpay.protocol import answers, requests, statement, wire


class UnionPayChannel(ChannelAdapter[UnionPayAccount, UnionPayCredentials]):
    """A configured UnionPay account (for example `unionpay_main`)."""

    wallet = "unionpay"
    credentials_type = UnionPayCredentials

    def __init__(
        self,
        name: str,
        config: UnionPayAccount,
        credentials: UnionPayCredentials,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, config, credentials, session, clock)
        self._merchant = wire.Merchant(
            mer_id=credentials.mer_id,
            cert_id=credentials.cert_id,
            private_key=credentials.signing_key_object,
        )
        # Live accounts trust only UnionPay's production name; test certificates name another.
        owners = {UNIONPAY_OWNER} if config.livemode else {UNIONPAY_OWNER, TEST_OWNER}
        self._verifier = ChainVerifier(credentials.root, credentials.middle, frozenset(owners))

    def __repr__(self) -> str:
        return f"UnionPayChannel({self._name!r}, merId={self._credentials.mer_id!r})"

    async def create(self, order: CreateOrder) -> CreateResult:
        """Place the order; the result carries the form, QR code or `tn` for the buyer."""
        consume = requests.Consume(
            method=order.method,
            order_no=order.order_no,
            created_at=order.created_at,
            amount=order.amount,
            currency=order.currency,
            back_url=order.notify_url,
            front_url=order.return_url,
            expires_at=order.expires_at,
            qr_no=order.auth_code,
        )
        call = requests.build_create_request(self._merchant, self._config.base_url, consume)
        if isinstance(call, Action):
            return CreateResult(call)
        return answers.parse_create_answer(order.method, await self._send(call))

    async def query(self, order: OrderRef) -> TradeStatus:
        """UnionPay's view of the payment, by `orderId` + `txnTime`."""
        call = requests.build_query_request(
            self._merchant, self._config.base_url, order.order_no, order.created_at
        )
        return answers.parse_query_answer(await self._send(call), order.order_no)

    async def close(self, order: OrderRef) -> None:
        """Make an unpaid order unpayable (a void); a paid one is refused."""
        status = await self.query(order)
        if status.state is TradeState.SUCCEEDED:
            raise ChannelRejected(
                "the order is already paid at UnionPay", code="ORDER_PAID", fault="request"
            )
        if status.state in (TradeState.CLOSED, TradeState.FAILED):
            return
        original = requests.Original(
            order.order_no, order.created_at, status.channel_trade_no or order.channel_trade_no
        )
        call = requests.build_close_request(
            self._merchant, self._config.base_url, original, status.amount, self._moment()
        )
        answers.parse_close_answer(await self._send(call))

    async def refund(self, refund: RefundOrder) -> RefundStatus:
        """Ask for a refund; UnionPay accepts it (`PENDING`) and reports the result later."""
        call = requests.build_refund_request(self._merchant, self._config.base_url, refund)
        answer = await self._send(call)
        return answers.parse_refund_answer(answer, refund.refund_no, refund.payment.order_no)

    async def query_refund(self, refund: RefundOrder) -> RefundStatus:
        """UnionPay's view of the refund, by its own `orderId` + `txnTime`."""
        call = requests.build_refund_query_request(
            self._merchant, self._config.base_url, refund.refund_no, refund.created_at
        )
        answer = await self._send(call)
        return answers.parse_refund_query_answer(answer, refund.refund_no, refund.payment.order_no)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify (certificate chain, signature, merId) and read a backend notification."""
        return parse_notification(body, self._verifier, self._credentials.mer_id, self._moment())

    def acknowledgement(self, accepted: bool) -> Acknowledgement:
        """HTTP 200 ends UnionPay's retries; anything else makes it post again later."""
        if accepted:
            return Acknowledgement(200, b"ok", content_type="text/plain")
        return Acknowledgement(500, b"fail", content_type="text/plain")

    async def statement(self, day: date) -> AsyncIterator[StatementLine]:
        """The day's settlement file by file transfer (txnType 76), inflated, then read."""
        call = requests.build_statement_request(
            self._merchant, self._config.statement_url, day, self._moment()
        )
        content = answers.parse_statement_answer(await self._send(call))
        if content is None:
            return
        with statement.inflate(content) as file:
            del content
            for count, line in enumerate(statement.read_file(file, day), 1):
                yield line
                if count % 1000 == 0:
                    # A long file is read in one go; let the loop serve others meanwhile.
                    await asyncio.sleep(0)

    def _moment(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def _send(self, call: requests.Call) -> dict[str, str]:
        answer = await self._exchange(call.request)
        return answers.read_answer(answer, self._verifier, self._moment(), call.fields)


build = UnionPayChannel.build
"""The channel for one routing-config entry (`channels.spec.ChannelSpec.build`)."""
