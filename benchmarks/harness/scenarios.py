"""The benchmark's operations: one call of each scenario, against a `Target`.

| scenario            | one operation                                                       |
|---------------------|---------------------------------------------------------------------|
| create-qr-<wallet>  | POST /v1/payments (method qr, the wallet's account pinned): 201      |
| direct-wechat       | the same create sent straight to the WeChat Pay simulator by the     |
|                     | adapter (same signing, same credentials): no router in between       |
| floor-wechat        | the same body to the floor process (`benchmarks.harness.floor`)            |
| lifecycle-wechat    | create, the buyer pays at the simulator, and the merchant webhook   |
|                     | `payment.succeeded` reaches the receiver (latency ends there)        |
| refund-wechat       | POST /v1/payments/{id}/refunds of 1 fen of an already paid payment   |
| spread-wechat       | create-qr-wechat by one of 16 merchants: every other create by the   |
|                     | first, the rest by the other 15 in turn (one sends half the traffic) |
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.harness.load import Exhausted, Failed, Op
from channels.base import CreateOrder, Wallet
from channels.wechat.adapter import WeChatChannel

WALLET_SCENARIOS: dict[str, Wallet] = {
    "create-qr-wechat": "wechat",
    "create-qr-alipay": "alipay",
    "create-qr-unionpay": "unionpay",
}
SCENARIOS: tuple[str, ...] = (
    "create-qr-wechat",
    "floor-wechat",
    "direct-wechat",
    "create-qr-alipay",
    "create-qr-unionpay",
    "lifecycle-wechat",
    "refund-wechat",
    "spread-wechat",
)
"""Every scenario, in the order a run measures them."""
SPREAD_MERCHANTS = 16
"""Merchants of the spread scenario; the first sends half of the creates."""
AMOUNT = 1999
REFUNDS_PER_PAYMENT = 50
"""WeChat Pay refuses a 51st refund of one order."""


class Receiver:
    """The merchant's webhook endpoint, in the harness process: notes when events arrive."""

    def __init__(self) -> None:
        self.url = ""
        self.received = 0
        self.unmatched = 0
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1") -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://{host}:{sock.getsockname()[1]}/hooks"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def expect(self, pay_id: str) -> asyncio.Future[float]:
        """A future that gets the arrival time (perf_counter) of `pay_id`'s success webhook."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters[pay_id] = future
        return future

    def forget(self, pay_id: str) -> None:
        self._waiters.pop(pay_id, None)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.perf_counter()
        self.received += 1
        event = json.loads(body)
        if event.get("type") == "payment.succeeded":
            future = self._waiters.pop(str(event.get("data", {}).get("id")), None)
            if future is not None and not future.done():
                future.set_result(arrived)
            else:
                self.unmatched += 1
        return web.Response(status=204)


@dataclass
class Target:
    """Where the operations go, and what they share."""

    session: aiohttp.ClientSession
    routers: list[str]
    api_key: str
    accounts: dict[Wallet, str]
    wechat_sim: str
    receiver: Receiver
    direct: WeChatChannel | None = None
    floor_url: str | None = None
    spread_keys: list[str] = field(default_factory=list)
    """API secrets of the spread scenario's merchants (empty: it cannot run)."""
    run_tag: str = field(default_factory=lambda: f"{int(time.time()) % 100000:05d}")
    paid: deque[list[Any]] = field(default_factory=deque)
    """Paid payments still refundable: `[payment id, refunds made]`."""
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _rr: itertools.count[int] = field(default_factory=itertools.count)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{self.run_tag}x{next(self._ids)}"

    def router(self) -> str:
        return self.routers[next(self._rr) % len(self.routers)]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.api_key)

    def using(self, routers: list[str]) -> Target:
        """The same target, its load spread over `routers` only."""
        return Target(
            session=self.session,
            routers=routers,
            api_key=self.api_key,
            accounts=self.accounts,
            wechat_sim=self.wechat_sim,
            receiver=self.receiver,
            direct=self.direct,
            floor_url=self.floor_url,
            spread_keys=self.spread_keys,
            run_tag=self.run_tag,
            paid=self.paid,
            _ids=self._ids,
        )


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    expect: tuple[int, ...] = (200, 201),
) -> dict[str, Any]:
    """POST `body`; the decoded JSON answer, or `Failed("http_<status>[:<code>]")`."""
    async with session.post(url, json=body, headers=headers) as resp:
        raw = await resp.read()
        if resp.status not in expect:
            code = ""
            with contextlib.suppress(ValueError, KeyError, TypeError):
                code = str(json.loads(raw)["error"]["code"])
            kind = f"http_{resp.status}" + (f":{code}" if code else "")
            raise Failed(kind, raw[:200].decode(errors="replace"))
        data: dict[str, Any] = json.loads(raw) if raw else {}
        return data


def payment_body(target: Target, wallet: Wallet, order_id: str) -> dict[str, Any]:
    # A buyer's address per order, as a shop's buyers have: the risk rules count per IP,
    # and none of these reaches a velocity threshold.
    n = zlib.crc32(order_id.encode()) & 0xFFFFFF
    return {
        "amount": AMOUNT,
        "merchant_order_id": order_id,
        "description": "payrouter bench",
        "method": "qr",
        "channel": target.accounts[wallet],
        "client_ip": f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}",
    }


async def create_payment(
    target: Target,
    wallet: Wallet,
    extra: dict[str, Any] | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    """One keyed create by the target's merchant (or the one `api_key` belongs to)."""
    order_id = target.next_id("B")
    body = payment_body(target, wallet, order_id) | (extra or {})
    headers = bearer(api_key or target.api_key) | {"Idempotency-Key": f"bench-{order_id}"}
    return await post_json(
        target.session, f"{target.router()}/v1/payments", body, headers, expect=(201,)
    )


def create_qr(target: Target, wallet: Wallet) -> Op:
    async def op() -> None:
        created = await create_payment(target, wallet)
        if not (created.get("action") or {}).get("qr_code"):
            raise Failed("no_qr_code", json.dumps(created)[:200])

    return op


def spread_merchant(index: int, merchants: int) -> int:
    """The merchant of the `index`-th spread create: 0 for every other one (half of the
    traffic), the others in turn for the rest."""
    if index % 2 == 0 or merchants < 2:
        return 0
    return 1 + (index // 2) % (merchants - 1)


def spread_wechat(target: Target) -> Op:
    """QR creates by `SPREAD_MERCHANTS` merchants, one of which sends half of them."""
    keys = target.spread_keys
    if not keys:
        raise ValueError("spread-wechat needs its merchants")
    turn = itertools.count()

    async def op() -> None:
        key = keys[spread_merchant(next(turn), len(keys))]
        created = await create_payment(target, "wechat", api_key=key)
        if not (created.get("action") or {}).get("qr_code"):
            raise Failed("no_qr_code", json.dumps(created)[:200])

    return op


def direct_wechat(target: Target) -> Op:
    channel = target.direct
    if channel is None:
        raise ValueError("direct-wechat needs the WeChat Pay adapter")
    notify_url = f"{target.routers[0]}/v1/notify/{target.accounts['wechat']}"

    async def op() -> None:
        result = await channel.create(
            CreateOrder(
                order_no=target.next_id("D"),
                created_at=datetime.now(UTC),
                amount=AMOUNT,
                currency="CNY",
                method="qr",
                description="payrouter bench",
                notify_url=notify_url,
            )
        )
        if not result.action.qr_code:
            raise Failed("no_qr_code")

    return op


def floor_wechat(target: Target) -> Op:
    if target.floor_url is None:
        raise ValueError("floor-wechat needs the floor process")
    url = f"{target.floor_url}/v1/payments"

    async def op() -> None:
        body = payment_body(target, "wechat", target.next_id("F"))
        created = await post_json(target.session, url, body, expect=(201,))
        if not created.get("qr_code"):
            raise Failed("no_qr_code", json.dumps(created)[:200])

    return op


async def pay(target: Target, qr_code: str) -> None:
    """The buyer scans and pays at the WeChat Pay simulator."""
    await post_json(target.session, f"{target.wechat_sim}/sim/buyer/pay", {"code": qr_code})


def lifecycle_wechat(target: Target, keep_paid: bool = True) -> Op:
    """Create → pay → the success webhook arrives; the op ends when the receiver got it."""

    async def op() -> float:
        created = await create_payment(target, "wechat", {"notify_url": target.receiver.url})
        pay_id = str(created["id"])
        arrived = target.receiver.expect(pay_id)
        try:
            await pay(target, str(created["action"]["qr_code"]))
            end = await arrived
        finally:
            target.receiver.forget(pay_id)
        if keep_paid:
            target.paid.append([pay_id, 0])
        return end

    return op


def refund_wechat(target: Target) -> Op:
    """1 fen refunds, taking paid payments in turn (each at most 50 times)."""

    async def op() -> None:
        if not target.paid:
            raise Exhausted("no_paid_payment", "every paid payment has had its 50 refunds")
        entry = target.paid.popleft()
        entry[1] += 1
        if entry[1] < REFUNDS_PER_PAYMENT:
            target.paid.append(entry)
        url = f"{target.router()}/v1/payments/{entry[0]}/refunds"
        refund = await post_json(target.session, url, {"amount": 1}, target.headers, expect=(201,))
        if refund.get("status") not in ("pending", "succeeded"):
            raise Failed(f"refund_{refund.get('status')}", json.dumps(refund)[:200])

    return op


def operation(name: str, target: Target) -> Op:
    """The operation of scenario `name`."""
    if name in WALLET_SCENARIOS:
        return create_qr(target, WALLET_SCENARIOS[name])
    makers: dict[str, Callable[[Target], Op]] = {
        "direct-wechat": direct_wechat,
        "floor-wechat": floor_wechat,
        "lifecycle-wechat": lifecycle_wechat,
        "refund-wechat": refund_wechat,
        "spread-wechat": spread_wechat,
    }
    return makers[name](target)
