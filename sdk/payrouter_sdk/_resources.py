"""The API's resources: `payments`, `refunds`, `events`, `webhook_endpoints`,
`payment_links` and `settlements` on a client.

Each endpoint is written once, as an async method. The blocking client's resources are made
from those methods by `_blocking` (same signature, same docstring, run on the client's loop).
"""

from __future__ import annotations

import builtins
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
)
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar
from urllib.parse import quote

from payrouter_sdk._models import (
    Event,
    EventList,
    ListObject,
    Payment,
    PaymentLink,
    PaymentLinkList,
    PaymentList,
    Refund,
    RefundList,
    Settlement,
    SettlementLine,
    SettlementLineList,
    SettlementList,
    WebhookEndpoint,
    WebhookEndpointList,
)

if TYPE_CHECKING:
    from payrouter_sdk._client import AsyncClient

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


I = TypeVar("I", bound=_Identified)  # noqa: E741 - the item type of a list


def _seg(ident: str) -> str:
    """An id as one path segment: whatever it holds cannot reach another URL."""
    if not ident or ident in (".", ".."):
        raise ValueError(f"not an id: {ident!r}")
    return quote(ident, safe="")


def _when(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware (e.g. datetime.now(UTC))")
        return value.isoformat()
    return value


def _compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


async def _paginate(fetch: Callable[[str | None], Awaitable[ListObject[I]]]) -> AsyncIterator[I]:
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.data:
            yield item
        if not page.has_more or not page.data:
            return
        cursor = page.data[-1].id


class _AsyncResource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


class AsyncPayments(_AsyncResource):
    """`/v1/payments`."""

    async def create(
        self,
        *,
        amount: int,
        merchant_order_id: str,
        description: str,
        method: str,
        currency: str | None = None,
        wallet: str | None = None,
        channel: str | None = None,
        notify_url: str | None = None,
        return_url: str | None = None,
        expires_in: int | None = None,
        client_ip: str | None = None,
        payer_id: str | None = None,
        auth_code: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Create a payment. `amount` is in minor units (fen); `method` is `qr`, `web`, `h5`,
        `app`, `jsapi` (with `payer_id`), `barcode` (with `auth_code`) or `checkout` (the
        router's hosted page: no wallet needed). Show the buyer `payment.action`. Passing your
        own `idempotency_key` (say, the order id) makes a repeated call, even from another
        process, return the first payment."""
        body = _compact(
            {
                "amount": amount,
                "currency": currency,
                "merchant_order_id": merchant_order_id,
                "description": description,
                "method": method,
                "wallet": wallet,
                "channel": channel,
                "notify_url": notify_url,
                "return_url": return_url,
                "expires_in": expires_in,
                "client_ip": client_ip,
                "payer_id": payer_id,
                "auth_code": auth_code,
                "metadata": None if metadata is None else dict(metadata),
            }
        )
        return await self._client._call(
            Payment, "POST", "/v1/payments", body=body, idempotency_key=idempotency_key
        )

    async def get(self, payment_id: str) -> Payment:
        """One payment by id."""
        return await self._client._call(Payment, "GET", f"/v1/payments/{_seg(payment_id)}")

    async def list(
        self,
        *,
        merchant_order_id: str | None = None,
        status: str | None = None,
        created_gte: datetime | str | None = None,
        created_lt: datetime | str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> PaymentList:
        """One page of payments, newest first; the next page starts after the last id."""
        params = {
            "merchant_order_id": merchant_order_id,
            "status": status,
            "created_gte": _when(created_gte),
            "created_lt": _when(created_lt),
            "limit": limit,
            "starting_after": starting_after,
        }
        return await self._client._call(PaymentList, "GET", "/v1/payments", params=params)

    def auto_paging_iter(
        self,
        *,
        merchant_order_id: str | None = None,
        status: str | None = None,
        created_gte: datetime | str | None = None,
        created_lt: datetime | str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Payment]:
        """Every matching payment, newest first, fetching pages of `limit` as it goes."""
        return _paginate(
            lambda cursor: self.list(
                merchant_order_id=merchant_order_id,
                status=status,
                created_gte=created_gte,
                created_lt=created_lt,
                limit=limit,
                starting_after=cursor,
            )
        )

    async def close(self, payment_id: str, *, idempotency_key: str | None = None) -> Payment:
        """Close an unpaid payment, at the channel too."""
        return await self._client._call(
            Payment,
            "POST",
            f"/v1/payments/{_seg(payment_id)}/close",
            idempotency_key=idempotency_key,
        )


class AsyncRefunds(_AsyncResource):
    """`/v1/payments/{id}/refunds` and `/v1/refunds`."""

    async def create(
        self,
        payment_id: str,
        amount: int | None = None,
        reason: str | None = None,
        merchant_refund_id: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Refund:
        """Refund `amount` (minor units) of a succeeded payment; None: all that is left.
        A `merchant_refund_id` seen before returns that refund instead of refunding twice."""
        body = _compact(
            {"amount": amount, "reason": reason, "merchant_refund_id": merchant_refund_id}
        )
        return await self._client._call(
            Refund,
            "POST",
            f"/v1/payments/{_seg(payment_id)}/refunds",
            body=body,
            idempotency_key=idempotency_key,
        )

    async def get(self, refund_id: str) -> Refund:
        """One refund by id."""
        return await self._client._call(Refund, "GET", f"/v1/refunds/{_seg(refund_id)}")

    async def list(
        self, payment_id: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> RefundList:
        """One page of a payment's refunds, newest first."""
        return await self._client._call(
            RefundList,
            "GET",
            f"/v1/payments/{_seg(payment_id)}/refunds",
            params={"limit": limit, "starting_after": starting_after},
        )

    def auto_paging_iter(
        self, payment_id: str, *, limit: int | None = None
    ) -> AsyncIterator[Refund]:
        """Every refund of a payment, newest first."""
        return _paginate(lambda cursor: self.list(payment_id, limit=limit, starting_after=cursor))


class AsyncEvents(_AsyncResource):
    """`/v1/events`: webhook events and how their delivery went."""

    async def list(
        self,
        *,
        type: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> EventList:
        """One page of events, newest first; `type` such as `payment.succeeded`."""
        params = {"type": type, "limit": limit, "starting_after": starting_after}
        return await self._client._call(EventList, "GET", "/v1/events", params=params)

    def auto_paging_iter(
        self, *, type: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Event]:
        """Every event (of `type`, if given), newest first."""
        return _paginate(lambda cursor: self.list(type=type, limit=limit, starting_after=cursor))

    async def get(self, event_id: str) -> Event:
        """One event, with its delivery attempts."""
        return await self._client._call(Event, "GET", f"/v1/events/{_seg(event_id)}")

    async def resend(self, event_id: str, *, idempotency_key: str | None = None) -> Event:
        """Deliver an event again (to the endpoint in force now)."""
        return await self._client._call(
            Event, "POST", f"/v1/events/{_seg(event_id)}/resend", idempotency_key=idempotency_key
        )


class AsyncSettlements(_AsyncResource):
    """`/v1/settlements`: what the merchant is paid per day and currency (T+1)."""

    async def list(
        self,
        *,
        day: str | None = None,
        currency: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> SettlementList:
        """One page of settlements, newest first; `day` as `YYYY-MM-DD`."""
        params = {
            "day": day,
            "currency": currency,
            "limit": limit,
            "starting_after": starting_after,
        }
        return await self._client._call(SettlementList, "GET", "/v1/settlements", params=params)

    def auto_paging_iter(
        self, *, day: str | None = None, currency: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Settlement]:
        """Every settlement (of `day` and `currency`, if given), newest first."""
        return _paginate(
            lambda cursor: self.list(day=day, currency=currency, limit=limit, starting_after=cursor)
        )

    async def get(self, settlement_id: str) -> Settlement:
        """One settlement."""
        return await self._client._call(Settlement, "GET", f"/v1/settlements/{_seg(settlement_id)}")

    async def lines(
        self, settlement_id: str, *, csv: bool = False
    ) -> str | builtins.list[SettlementLine]:
        """Every line of a settlement: the CSV text the API streams (`csv=True`), or the
        lines as objects, read page by page."""
        path = f"/v1/settlements/{_seg(settlement_id)}/lines"
        if csv:
            return await self._client._text("GET", path, accept="text/csv")
        out: builtins.list[SettlementLine] = []
        after: int | None = None
        while True:
            page = await self._client._call(
                SettlementLineList, "GET", path, params={"limit": 100, "starting_after": after}
            )
            out += page.data
            if not page.has_more or not page.data:
                return out
            after = page.data[-1].number


class AsyncWebhookEndpoints(_AsyncResource):
    """`/v1/webhook_endpoints`: endpoints payrouter stopped sending to after a 410 Gone."""

    async def list_disabled(self) -> WebhookEndpointList:
        """Every disabled endpoint of the merchant."""
        return await self._client._call(
            WebhookEndpointList, "GET", "/v1/webhook_endpoints/disabled"
        )

    async def enable(
        self, endpoint_id: str, *, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        """Send to a disabled endpoint again (its dead letters: `events.resend`)."""
        return await self._client._call(
            WebhookEndpoint,
            "POST",
            f"/v1/webhook_endpoints/{_seg(endpoint_id)}/enable",
            idempotency_key=idempotency_key,
        )


class AsyncPaymentLinks(_AsyncResource):
    """`/v1/payment_links`: a shop's permanent codes, each scan a new checkout payment."""

    async def create(
        self,
        *,
        description: str,
        amount: int | None = None,
        currency: str = "CNY",
        return_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentLink:
        """A new, active link; without `amount` the buyer enters one (checked by the router)."""
        body = _compact(
            {
                "description": description,
                "amount": amount,
                "currency": currency,
                "return_url": return_url,
            }
        )
        return await self._client._call(
            PaymentLink, "POST", "/v1/payment_links", body=body, idempotency_key=idempotency_key
        )

    async def get(self, link_id: str) -> PaymentLink:
        """One link, with how many payments it made."""
        return await self._client._call(PaymentLink, "GET", f"/v1/payment_links/{_seg(link_id)}")

    async def list(self, *, limit: int | None = None) -> PaymentLinkList:
        """The merchant's links, newest first."""
        params = _compact({"limit": limit})
        return await self._client._call(PaymentLinkList, "GET", "/v1/payment_links", params=params)

    async def disable(self, link_id: str, *, idempotency_key: str | None = None) -> PaymentLink:
        """Stop the link: scans no longer make payments."""
        return await self._client._call(
            PaymentLink,
            "POST",
            f"/v1/payment_links/{_seg(link_id)}/disable",
            idempotency_key=idempotency_key,
        )


class Runner(Protocol):
    """Runs a coroutine to completion on the blocking client's loop and returns its result."""

    def __call__(self, coro: Coroutine[Any, Any, T], /) -> T: ...


class _SyncResource(Generic[R]):
    def __init__(self, inner: R, run: Runner) -> None:
        self._inner = inner
        self._run = run

    def _iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        async def step() -> T:
            return await anext(items)

        try:
            while True:
                try:
                    yield self._run(step())
                except StopAsyncIteration:
                    return
        finally:
            if isinstance(items, AsyncGenerator):
                self._run(items.aclose())


def _blocking(
    method: Callable[Concatenate[R, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[_SyncResource[R], P], T]:
    def call(self: _SyncResource[R], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._inner, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


def _blocking_iter(
    method: Callable[Concatenate[R, P], AsyncIterator[T]],
) -> Callable[Concatenate[_SyncResource[R], P], Iterator[T]]:
    def call(self: _SyncResource[R], /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._iterate(method(self._inner, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class Payments(_SyncResource[AsyncPayments]):
    """`/v1/payments`, blocking: the methods of `AsyncPayments`."""

    create = _blocking(AsyncPayments.create)
    get = _blocking(AsyncPayments.get)
    list = _blocking(AsyncPayments.list)
    auto_paging_iter = _blocking_iter(AsyncPayments.auto_paging_iter)
    close = _blocking(AsyncPayments.close)


class Refunds(_SyncResource[AsyncRefunds]):
    """`/v1/payments/{id}/refunds` and `/v1/refunds`, blocking: the methods of `AsyncRefunds`."""

    create = _blocking(AsyncRefunds.create)
    get = _blocking(AsyncRefunds.get)
    list = _blocking(AsyncRefunds.list)
    auto_paging_iter = _blocking_iter(AsyncRefunds.auto_paging_iter)


class Events(_SyncResource[AsyncEvents]):
    """`/v1/events`, blocking: the methods of `AsyncEvents`."""

    list = _blocking(AsyncEvents.list)
    auto_paging_iter = _blocking_iter(AsyncEvents.auto_paging_iter)
    get = _blocking(AsyncEvents.get)
    resend = _blocking(AsyncEvents.resend)


class Settlements(_SyncResource[AsyncSettlements]):
    """`/v1/settlements`, blocking: the methods of `AsyncSettlements`."""

    list = _blocking(AsyncSettlements.list)
    auto_paging_iter = _blocking_iter(AsyncSettlements.auto_paging_iter)
    get = _blocking(AsyncSettlements.get)
    lines = _blocking(AsyncSettlements.lines)


class WebhookEndpoints(_SyncResource[AsyncWebhookEndpoints]):
    """`/v1/webhook_endpoints`, blocking: the methods of `AsyncWebhookEndpoints`."""

    list_disabled = _blocking(AsyncWebhookEndpoints.list_disabled)
    enable = _blocking(AsyncWebhookEndpoints.enable)


class PaymentLinks(_SyncResource[AsyncPaymentLinks]):
    """`/v1/payment_links`, blocking: the methods of `AsyncPaymentLinks`."""

    create = _blocking(AsyncPaymentLinks.create)
    get = _blocking(AsyncPaymentLinks.get)
    list = _blocking(AsyncPaymentLinks.list)
    disable = _blocking(AsyncPaymentLinks.disable)
