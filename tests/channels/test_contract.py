"""The channel contract (`channels.base.Channel`), the same tests for every channel.

Each channel family contributes a harness module (see `tests/channels/harness.py`): its
simulator on loopback and its adapter built from a routing-config entry. To add a channel,
add one line to `HARNESSES`; nothing here names a channel. The tests read
`channel.capabilities` to decide what to try, and expect of a harness:

- `pay` / `decline` work with the action of an order made with any method the channel offers
  (for a barcode payment waiting for the buyer, with `auth_code`);
- an account total timeout well under `HANG_MS` (one or two seconds keeps the suite fast);
- the simulator's `/sim/faults` takes the shared `channels.sim.kit.Faults` fields.

Orders and refunds that must already exist at the channel (query, pay, refund) use the first
of `SERVER_SIDE_METHODS` the channel offers: those create the order with a server call,
whereas `web`/`h5` may only build a form or URL for the browser.
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from channels.base import (
    METHODS,
    ActionType,
    Channel,
    CreateOrder,
    Method,
    OrderRef,
    RefundOrder,
    RefundState,
    RefundStatus,
    TradeState,
    TradeStatus,
)
from channels.errors import (
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    NotificationRejected,
)
from channels.registry import REGISTRY
from tests.channels.conftest import serve
from tests.channels.harness import Harness, HarnessFactory

HARNESSES = {wallet: f"tests.channels.harnesses.{wallet}" for wallet in REGISTRY}
"""Wallet → the module whose `harness` starts its simulator and adapter: every registered
channel runs the contract, so a new one without a harness fails here."""

EXPECTED_ACTIONS: dict[Method, frozenset[ActionType]] = {
    "qr": frozenset({"qr_code"}),
    "web": frozenset({"redirect", "form_post"}),
    "h5": frozenset({"redirect", "form_post"}),
    "app": frozenset({"app_params"}),
    "jsapi": frozenset({"app_params"}),
    "barcode": frozenset({"none"}),
}
SERVER_SIDE_METHODS: tuple[Method, ...] = ("qr", "app", "jsapi", "h5", "web")
HANG_MS = 30_000
NOWHERE = "http://127.0.0.1:9/notify"
"""A notify URL nobody listens on, for tests that do not read notifications."""

T = TypeVar("T")


@pytest.fixture(params=list(HARNESSES))
async def h(
    request: pytest.FixtureRequest, tmp_path: Path, http_session: aiohttp.ClientSession
) -> AsyncIterator[Harness]:
    factory: HarnessFactory = importlib.import_module(HARNESSES[request.param]).harness
    async with factory(tmp_path, http_session) as harness:
        yield harness


# Building orders and refunds the way the router does


def currency_of(h: Harness) -> str:
    currencies = h.channel.capabilities.currencies
    return "CNY" if "CNY" in currencies else sorted(currencies)[0]


def server_side_method(h: Harness) -> Method:
    methods = h.channel.capabilities.methods
    for method in SERVER_SIDE_METHODS:
        if method in methods and (method != "jsapi" or h.payer_id is not None):
            return method
    pytest.skip(f"{h.name} offers no method that creates orders at the channel")


def new_order(
    h: Harness, method: Method | None = None, *, amount: int = 1999, notify_url: str = NOWHERE
) -> CreateOrder:
    now = datetime.now(UTC)
    return CreateOrder(
        order_no=f"pay{secrets.token_hex(8)}",
        created_at=now,
        amount=amount,
        currency=currency_of(h),
        method=method or server_side_method(h),
        description="Contract test",
        notify_url=notify_url,
        expires_at=now + timedelta(minutes=30),
        return_url="http://127.0.0.1:9/return",
        client_ip="203.0.113.7",
        payer_id=h.payer_id,
        auth_code=h.auth_code,
    )


def ref(order: CreateOrder) -> OrderRef:
    return OrderRef(order.order_no, order.created_at)


def refund_of(order: CreateOrder, amount: int | None = None) -> RefundOrder:
    return RefundOrder(
        refund_no=f"ref{secrets.token_hex(8)}",
        created_at=datetime.now(UTC),
        payment=ref(order),
        amount=order.amount if amount is None else amount,
        total=order.amount,
        currency=order.currency,
        notify_url=NOWHERE,
        reason="Contract test",
    )


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Probe until `done` holds: for states the simulator reaches on its own timers."""
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if done(value):
                return value
            await asyncio.sleep(0.005)


async def paid_order(h: Harness, amount: int = 1000) -> CreateOrder:
    order = new_order(h, amount=amount)
    result = await h.channel.create(order)
    await h.pay(result.action)
    status = await eventually(
        lambda: h.channel.query(ref(order)), lambda s: s.state is not TradeState.PENDING
    )
    assert status.state is TradeState.SUCCEEDED, status
    return order


def settled(status: RefundStatus) -> bool:
    return status.state is not RefundState.PENDING


# The merchant's notification endpoint


@dataclass(frozen=True)
class Callback:
    at: float
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class Callbacks:
    """Receives notifications and answers as the router would: the channel's own
    acknowledgement, accepting what verifies, and refusing the first `refuse` of them."""

    channel: Channel
    url: str = ""
    refuse: int = 0
    _queue: asyncio.Queue[Callback] = field(default_factory=asyncio.Queue)

    async def next(self, timeout: float = 10.0) -> Callback:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def handle(self, request: web.Request) -> web.Response:
        callback = Callback(
            time.monotonic(), CIMultiDictProxy(CIMultiDict(request.headers)), await request.read()
        )
        self._queue.put_nowait(callback)
        try:
            self.channel.parse_notification(callback.headers, callback.body)
            accepted = self.refuse <= 0
        except NotificationRejected:
            accepted = False
        self.refuse -= 1
        ack = self.channel.acknowledgement(accepted)
        return web.Response(
            status=ack.status,
            body=ack.body,
            content_type=ack.content_type.split(";")[0],
            headers=dict(ack.headers),
        )


@pytest.fixture
async def callbacks(h: Harness) -> AsyncIterator[Callbacks]:
    box = Callbacks(h.channel)
    app = web.Application()
    app.router.add_post("/notify", box.handle)
    served = await serve(app)
    box.url = f"{served.base_url}/notify"
    try:
        yield box
    finally:
        await served.runner.cleanup()


# Creating orders


async def test_every_method_creates_its_action(h: Harness) -> None:
    for method in sorted(h.channel.capabilities.methods):
        if method == "jsapi" and h.payer_id is None:
            continue
        result = await h.channel.create(new_order(h, method))
        assert result.action.type in EXPECTED_ACTIONS[method], (method, result.action)
        if method == "barcode":
            assert result.state in (TradeState.SUCCEEDED, TradeState.PENDING), result
        else:
            assert result.state is TradeState.PENDING, (method, result)


async def test_query_of_an_unknown_order_is_not_found(h: Harness) -> None:
    status = await h.channel.query(ref(new_order(h)))
    assert status.state is TradeState.NOT_FOUND


async def test_query_after_create_is_pending(h: Harness) -> None:
    order = new_order(h)
    await h.channel.create(order)
    status = await h.channel.query(ref(order))
    assert (status.order_no, status.state) == (order.order_no, TradeState.PENDING)


# Paying


def assert_paid(trade: TradeStatus | None, order: CreateOrder) -> None:
    assert trade is not None
    assert (trade.order_no, trade.state) == (order.order_no, TradeState.SUCCEEDED)
    assert trade.amount == order.amount


async def test_payment_is_notified_until_acknowledged(h: Harness, callbacks: Callbacks) -> None:
    order = new_order(h, notify_url=callbacks.url)
    result = await h.channel.create(order)
    callbacks.refuse = 1
    await h.pay(result.action)

    refused = await callbacks.next()
    retried = await callbacks.next()
    for callback in (refused, retried):
        notification = h.channel.parse_notification(callback.headers, callback.body)
        assert notification.refund is None
        assert_paid(notification.trade, order)
    # Accepted: no more attempts, well past the wait the channel used before its retry.
    gap = retried.at - refused.at
    with pytest.raises(TimeoutError):
        await callbacks.next(timeout=min(max(3 * gap, 0.1), 2.0))

    assert_paid(await h.channel.query(ref(order)), order)


async def test_declined_payment_does_not_succeed(h: Harness) -> None:
    order = new_order(h)
    result = await h.channel.create(order)
    await h.decline(result.action)
    status = await h.channel.query(ref(order))
    assert status.state in (TradeState.FAILED, TradeState.PENDING, TradeState.CLOSED), status


async def test_tampered_notifications_are_rejected(h: Harness, callbacks: Callbacks) -> None:
    order = new_order(h, notify_url=callbacks.url)
    await h.pay((await h.channel.create(order)).action)
    real = await callbacks.next()
    h.channel.parse_notification(real.headers, real.body)
    for body in (flip_one_character(real.body), real.body[: len(real.body) // 2], b""):
        with pytest.raises(NotificationRejected):
            h.channel.parse_notification(real.headers, body)


def flip_one_character(body: bytes) -> bytes:
    """`body` with one letter or digit near its middle changed to another of its kind."""
    index = next(i for i in range(len(body) // 2, len(body)) if chr(body[i]).isalnum())
    old = chr(body[index])
    new = ("1" if old == "0" else "0") if old.isdigit() else ("b" if old == "a" else "a")
    return body[:index] + new.encode() + body[index + 1 :]


# Closing


async def test_close(h: Harness) -> None:
    order = new_order(h)
    await h.channel.create(order)
    await h.channel.close(ref(order))
    status = await h.channel.query(ref(order))
    assert status.state is TradeState.CLOSED, status


async def test_closing_an_unknown_order_is_fine(h: Harness) -> None:
    await h.channel.close(ref(new_order(h)))


# Refunds


async def test_full_refund(h: Harness) -> None:
    order = await paid_order(h)
    refund = refund_of(order)
    accepted = await h.channel.refund(refund)
    assert accepted.refund_no == refund.refund_no
    assert accepted.state in (RefundState.PENDING, RefundState.SUCCEEDED), accepted
    assert accepted.amount in (None, order.amount)
    done = await eventually(lambda: h.channel.query_refund(refund), settled)
    assert (done.refund_no, done.state) == (refund.refund_no, RefundState.SUCCEEDED)
    assert done.amount in (None, order.amount)


async def test_partial_refunds_never_exceed_the_total(h: Harness) -> None:
    if not h.channel.capabilities.partial_refunds:
        pytest.skip(f"{h.name} does not declare partial refunds")
    order = await paid_order(h, amount=1000)
    for amount in (300, 600):
        status = await h.channel.refund(refund_of(order, amount))
        assert status.state in (RefundState.PENDING, RefundState.SUCCEEDED), status
    with pytest.raises(ChannelRejected):
        await h.channel.refund(refund_of(order, 200))
    await h.channel.refund(refund_of(order, 100))


async def test_the_same_refund_number_refunds_once(h: Harness) -> None:
    if not h.channel.capabilities.partial_refunds:
        pytest.skip(f"{h.name} does not declare partial refunds")
    order = await paid_order(h, amount=1000)
    refund = refund_of(order, 600)
    first = await h.channel.refund(refund)
    again = await h.channel.refund(refund)
    assert again.refund_no == first.refund_no == refund.refund_no
    if first.channel_refund_no and again.channel_refund_no:
        assert again.channel_refund_no == first.channel_refund_no
    # Refunded once: exactly the other 400 are left.
    await h.channel.refund(refund_of(order, 400))
    with pytest.raises(ChannelRejected):
        await h.channel.refund(refund_of(order, 1))


async def test_query_refund(h: Harness) -> None:
    order = await paid_order(h)
    refund = refund_of(order, 500 if h.channel.capabilities.partial_refunds else None)
    unknown = await h.channel.query_refund(refund)
    assert (unknown.refund_no, unknown.state) == (refund.refund_no, RefundState.NOT_FOUND)
    await h.channel.refund(refund)
    status = await h.channel.query_refund(refund)
    assert status.refund_no == refund.refund_no
    assert status.state in (RefundState.PENDING, RefundState.SUCCEEDED), status
    assert status.amount in (None, refund.amount)


# Faults


async def test_outage_is_unavailable(h: Harness) -> None:
    order = new_order(h)
    await h.set_faults({"outage": True})
    with pytest.raises(ChannelUnavailable):
        await h.channel.create(order)
    with pytest.raises(ChannelUnavailable):
        await h.channel.query(ref(order))
    await h.set_faults({})
    assert (await h.channel.query(ref(order))).state is TradeState.NOT_FOUND


async def test_hang_is_outcome_unknown_and_query_tells(h: Harness) -> None:
    order = new_order(h)
    await h.set_faults({"timeout_rate": 1, "hang_ms": HANG_MS})
    started = time.monotonic()
    with pytest.raises(ChannelOutcomeUnknown):
        await h.channel.create(order)
    assert time.monotonic() - started < HANG_MS / 1000 / 2
    await h.set_faults({})
    # The hung create was processed: the order is there, waiting for the buyer.
    status = await h.channel.query(ref(order))
    assert status.state is TradeState.PENDING, status


def test_every_method_has_expected_actions() -> None:
    assert set(EXPECTED_ACTIONS) == set(METHODS)
