"""`WeChatChannel`: one WeChat Pay API v3 account behind the `channels.base.Channel` contract.

The adapter only orchestrates: `protocol.requests` builds, `protocol.answers` reads, `channels.http`
sends. Every 2xx answer must carry a valid platform signature; one that does not is treated as
"we do not know what happened" (`ChannelOutcomeUnknown`), never as a success.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import NoReturn

import aiohttp
from multidict import CIMultiDict

from channels.adapter_base import ChannelAdapter
from channels.base import (
    Acknowledgement,
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
from channels.errors import ChannelOutcomeUnknown, ChannelRejected, NotificationRejected
from channels.http import HttpAnswer, HttpRequest
from channels.statement import download
from channels.wechat.config import (
    WeChatAccount,
    WeChatCredentials,
)
from channels.wechat.crypto import VerificationError, verify_answer
from channels.wechat.notification import decode_notification
from channels.wechat.protocol import answers, codes, requests, statement, wire


class WeChatChannel(ChannelAdapter[WeChatAccount, WeChatCredentials]):
    """A configured WeChat Pay account (for example `wechat_main`)."""

    wallet = "wechat"
    credentials_type = WeChatCredentials

    def __init__(
        self,
        name: str,
        config: WeChatAccount,
        credentials: WeChatCredentials,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, config, credentials, session, clock)
        self._merchant = wire.Merchant(
            mchid=credentials.mchid,
            appid=credentials.appid,
            serial_no=credentials.merchant_serial_no,
            private_key=credentials.merchant_key,
        )
        self._platform_keys = {credentials.platform_public_key_id: credentials.platform_key}

    def __repr__(self) -> str:
        return f"WeChatChannel({self._name!r}, mchid={self._credentials.mchid!r})"

    def _oauth_hosts(self) -> tuple[str, str]:
        # The simulator serves WeChat's authorisation beside the payment API; live accounts
        # use WeChat's own hosts.
        if self._config.livemode:
            return requests.OAUTH_OPEN_HOST, requests.OAUTH_API_HOST
        return self._config.base_url, self._config.base_url

    def payer_authorization_url(self, redirect_uri: str, state: str) -> str:
        """WeChat's web authorisation (`snsapi_base`): the buyer comes back with a code."""
        return requests.oauth_authorize_url(
            self._oauth_hosts()[0], self._credentials.appid, redirect_uri, state
        )

    async def payer_id(self, code: str) -> str:
        """The buyer's openid for an authorisation code. Raises `ChannelError`."""
        if self._config.livemode and self._credentials.app_secret is None:
            raise ChannelRejected(
                "the account's credentials have no app_secret", code="NO_APP_SECRET"
            )
        url = requests.oauth_token_url(
            self._oauth_hosts()[1], self._credentials.appid, self._credentials.oauth_secret(), code
        )
        answer = await self._exchange(HttpRequest("GET", url))
        try:
            return answers.parse_oauth_token_answer(answer.body)
        except answers.OAuthRefused as exc:
            raise ChannelRejected(exc.errmsg, code=str(exc.errcode), fault="request") from exc
        except ValueError as exc:
            raise ChannelOutcomeUnknown(f"unreadable access_token answer: {exc}") from exc

    async def create(self, order: CreateOrder) -> CreateResult:
        """Place the order; the result carries the QR code, URL or app parameters."""
        timestamp, nonce = self._stamp()
        request = requests.build_create_request(
            self._merchant,
            self._config.base_url,
            requests.OrderRequest(
                method=order.method,
                out_trade_no=order.order_no,
                description=order.description,
                total=order.amount,
                currency=order.currency,
                notify_url=order.notify_url,
                time_expire=order.expires_at,
                client_ip=order.client_ip,
                openid=order.payer_id,
                auth_code=order.auth_code,
            ),
            timestamp=timestamp,
            nonce=nonce,
        )
        answer = await self._call(request)
        sign_time, sign_nonce = self._stamp()
        return answers.parse_create_answer(
            order.method, answer, self._merchant, timestamp=sign_time, nonce=sign_nonce
        )

    async def query(self, order: OrderRef) -> TradeStatus:
        """WeChat's view of the order by our order number (`out_trade_no`)."""
        timestamp, nonce = self._stamp()
        request = requests.build_query_request(
            self._merchant, self._config.base_url, order.order_no, timestamp=timestamp, nonce=nonce
        )
        return answers.parse_query_answer(await self._call(request), order.order_no)

    async def close(self, order: OrderRef) -> None:
        """Close an unpaid order; an order WeChat does not know is already as good as closed."""
        timestamp, nonce = self._stamp()
        request = requests.build_close_request(
            self._merchant, self._config.base_url, order.order_no, timestamp=timestamp, nonce=nonce
        )
        answers.parse_close_answer(await self._call(request))

    async def refund(self, refund: RefundOrder) -> RefundStatus:
        """Apply for a refund; WeChat answers with the refund, usually still `PROCESSING`.

        The same `refund_no` (`out_refund_no`) again returns the refund already made.
        """
        timestamp, nonce = self._stamp()
        request = requests.build_refund_request(
            self._merchant,
            self._config.base_url,
            requests.RefundRequest(
                out_trade_no=refund.payment.order_no,
                out_refund_no=refund.refund_no,
                refund=refund.amount,
                total=refund.total,
                currency=refund.currency,
                notify_url=refund.notify_url,
                reason=refund.reason,
            ),
            timestamp=timestamp,
            nonce=nonce,
        )
        return answers.parse_refund_answer(
            await self._call(request), refund.refund_no, refund.payment.order_no
        )

    async def query_refund(self, refund: RefundOrder) -> RefundStatus:
        """WeChat's view of the refund by our refund number; `NOT_FOUND` if it has none."""
        timestamp, nonce = self._stamp()
        request = requests.build_refund_query_request(
            self._merchant,
            self._config.base_url,
            refund.refund_no,
            timestamp=timestamp,
            nonce=nonce,
        )
        return answers.parse_refund_query_answer(
            await self._call(request), refund.refund_no, refund.payment.order_no
        )

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify (signature, ±300 s), decrypt and read a payment or refund notification."""
        try:
            verify_answer(CIMultiDict(headers), body, self._platform_keys, now=self._clock.now())
            return decode_notification(
                body,
                self._credentials.apiv3_key.get_secret_value(),
                mchid=self._credentials.mchid,
            )
        except VerificationError as exc:
            raise NotificationRejected(exc.reason, exc.message) from None

    def acknowledgement(self, accepted: bool) -> Acknowledgement:
        """200 `{"code":"SUCCESS"}` ends WeChat's retries; 500 `{"code":"FAIL"}` asks again."""
        if accepted:
            return Acknowledgement(200, wire.dump_json(wire.ACK_ACCEPTED))
        return Acknowledgement(500, wire.dump_json(wire.ACK_REFUSED))

    async def statement(self, day: date) -> AsyncIterator[StatementLine]:
        """The day's trade bill (payments and refunds), SHA1-checked, then read as it streams."""
        timestamp, nonce = self._stamp()
        request = requests.build_statement_request(
            self._merchant, self._config.base_url, day, timestamp=timestamp, nonce=nonce
        )
        found = answers.parse_statement_answer(await self._call(request))
        if found is None:
            return
        timestamp, nonce = self._stamp()
        fetch = requests.build_statement_download_request(
            self._merchant,
            self._config.base_url,
            found.download_url,
            timestamp=timestamp,
            nonce=nonce,
        )
        with await download(self._session, fetch, self._timeouts, _refuse_download) as file:
            statement.verify_sha1(file, found.hash_value)
            for count, line in enumerate(statement.read_trade_bill(statement.text_rows(file)), 1):
                yield line
                if count % 1000 == 0:
                    # A long bill is read in one go; let the loop serve others meanwhile.
                    await asyncio.sleep(0)

    def _stamp(self) -> tuple[int, str]:
        return int(self._clock.now()), secrets.token_hex(16).upper()

    async def _call(self, request: HttpRequest) -> HttpAnswer:
        answer = await self._exchange(request)
        if 200 <= answer.status < 300:
            try:
                verify_answer(
                    answer.headers, answer.body, self._platform_keys, now=self._clock.now()
                )
            except VerificationError as exc:
                raise ChannelOutcomeUnknown(
                    f"unverifiable {answer.status} answer from WeChat Pay: {exc.message}",
                    code="ANSWER_SIGNATURE",
                ) from None
        return answer


def _refuse_download(status: int, body: bytes) -> NoReturn:
    raise codes.error_from_answer(HttpAnswer.build(status, {}, body))


build = WeChatChannel.build
"""The channel for one routing-config entry (`channels.spec.ChannelSpec.build`)."""
