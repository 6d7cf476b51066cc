"""`AlipayChannel`: one Alipay app behind the `channels.base.Channel` contract.

The adapter only orchestrates: `protocol.requests` builds, `protocol.answers` reads,
`channels.http` sends. Every answer must carry Alipay's valid signature over the exact
`_response` bytes; one that does not is "we do not know what happened"
(`ChannelOutcomeUnknown`), never a success.

Page (`web`), wap (`h5`) and app payments make no server call: the signed parameters go to the
buyer, and the trade exists at Alipay only once the buyer opens them. Until then a query
answers `NOT_FOUND` and a close has nothing to close; the order's `time_expire` keeps a
forgotten URL from being paid after the payment expired.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from typing import NoReturn

import aiohttp

from channels.adapter_base import ChannelAdapter
from channels.alipay.config import (
    AlipayAccount,
    AlipayCredentials,
)
from channels.alipay.crypto import VerificationError
from channels.alipay.notification import ACK_ACCEPTED, ACK_REFUSED, decode_notification
from channels.alipay.protocol import answers, requests, statement, wire
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
    TradeStatus,
)
from channels.clock import Clock
from channels.errors import ChannelOutcomeUnknown, NotificationRejected
from channels.statement import download


class AlipayChannel(ChannelAdapter[AlipayAccount, AlipayCredentials]):
    """A configured Alipay app (for example `alipay_main`)."""

    wallet = "alipay"
    credentials_type = AlipayCredentials

    def __init__(
        self,
        name: str,
        config: AlipayAccount,
        credentials: AlipayCredentials,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, config, credentials, session, clock)
        self._gateway = config.gateway
        self._app = wire.App(
            app_id=credentials.app_id,
            private_key=credentials.app_key,
            alipay_key=credentials.alipay_key,
        )

    def __repr__(self) -> str:
        return f"AlipayChannel({self._name!r}, app_id={self._credentials.app_id!r})"

    async def create(self, order: CreateOrder) -> CreateResult:
        """Create the trade (or, for web, h5 and app, sign what the buyer opens)."""
        call = requests.build_create_request(self._app, self._gateway, order, now=self._moment())
        if isinstance(call, Action):
            return CreateResult(call)
        reply = await self._send(call)
        return answers.parse_create_answer(order.method, reply, order.order_no)

    async def query(self, order: OrderRef) -> TradeStatus:
        """Alipay's view of the trade by our order number."""
        call = requests.build_query_request(
            self._app, self._gateway, order.order_no, now=self._moment()
        )
        return answers.parse_query_answer(await self._send(call), order.order_no)

    async def close(self, order: OrderRef) -> None:
        """Close an unpaid trade; one Alipay does not know is as good as closed."""
        call = requests.build_close_request(
            self._app, self._gateway, order.order_no, now=self._moment()
        )
        answers.parse_close_answer(await self._send(call))

    async def refund(self, refund: RefundOrder) -> RefundStatus:
        """Refund synchronously; the refund number is `out_request_no`, so resending is safe."""
        call = requests.build_refund_request(self._app, self._gateway, refund, now=self._moment())
        status = answers.parse_refund_answer(await self._send(call), refund)
        if status is not None:
            return status
        # fund_change N: Alipay refunded this out_request_no before; its query says how.
        return await self.query_refund(refund)

    async def query_refund(self, refund: RefundOrder) -> RefundStatus:
        """Alipay's view of the refund by our refund number."""
        call = requests.build_refund_query_request(
            self._app, self._gateway, refund, now=self._moment()
        )
        return answers.parse_refund_query_answer(await self._send(call), refund)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and read a `trade_status_sync` form post for this app."""
        try:
            return decode_notification(body, self._app.alipay_key, self._app.app_id)
        except VerificationError as exc:
            raise NotificationRejected(exc.reason, exc.message) from None

    def acknowledgement(self, accepted: bool) -> Acknowledgement:
        """The exact text `success` ends Alipay's retries; anything else (`fail`) asks again."""
        if accepted:
            return Acknowledgement(200, ACK_ACCEPTED, content_type="text/plain")
        return Acknowledgement(400, ACK_REFUSED, content_type="text/plain")

    async def statement(self, day: date) -> AsyncIterator[StatementLine]:
        """The day's trade bill: its download URL asked for, the zip fetched, then read."""
        call = requests.build_statement_request(self._app, self._gateway, day, now=self._moment())
        url = answers.parse_statement_answer(await self._send(call))
        if url is None:
            return
        fetch = requests.build_statement_download_request(self._gateway, url)
        with await download(self._session, fetch, self._timeouts, _refuse_download) as file:
            for count, line in enumerate(statement.read_bill(file), 1):
                yield line
                if count % 1000 == 0:
                    # A long bill is read in one go; let the loop serve others meanwhile.
                    await asyncio.sleep(0)

    def _moment(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), wire.BEIJING)

    async def _send(self, call: requests.Call) -> wire.Reply:
        answer = await self._exchange(call.request)
        return answers.read_reply(answer, call.api_method, self._app.alipay_key)


def _refuse_download(status: int, body: bytes) -> NoReturn:
    raise ChannelOutcomeUnknown(f"Alipay's bill download answered {status}", code=str(status))


build = AlipayChannel.build
"""The channel for one routing-config entry (`channels.spec.ChannelSpec.build`)."""
