"""What every channel simulator shares: settings, injected faults and background notifications.

A simulator is an `aiohttp.web.Application` that speaks one channel's wire protocol. The pieces
here are channel-neutral:

- `SimulatorSettings`: where the sandbox keys live, the seed that makes a run repeatable and
  the time factor that shrinks notification retry schedules and automatic-payment timers;
- `Faults` and `FaultBox`: the `PUT/GET /sim/faults` document and the seeded dice that apply
  it to protocol calls (latency, errors, hangs, outage, misreported amounts) and to
  notifications;
- `Notifier`: posts notifications in the background on the channel's retry schedule, records
  every attempt, and shuts down cleanly with the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError


@dataclass(frozen=True)
class SimulatorSettings:
    """How one simulator process runs."""

    sandbox_dir: Path
    """Where sandbox credentials are generated once and reloaded on restart."""
    seed: int | None = None
    """Seed for ids, codes and fault dice; `None` draws a fresh seed."""
    time_factor: float = 1.0
    """Multiplies notification retry delays and automatic-payment timers (0.001 in tests)."""
    public_base_url: str | None = None
    """The simulator's own address as buyers see it (h5 pages); `None`: the request's host."""
    accounts: int = 1
    """How many sandbox merchant accounts it holds (ids numbered on from the first)."""

    def make_rng(self) -> random.Random:
        """A random generator for this run: repeatable when `seed` is set."""
        return random.Random(self.seed)  # noqa: S311 - simulated ids, not secrets

    def scaled(self, seconds: float) -> float:
        """`seconds` of channel time, in real seconds under the time factor."""
        return seconds * self.time_factor


Operation = Literal["create", "query", "close", "refund", "query_refund"]


class Faults(BaseModel):
    """Misbehaviour to inject, as set with `PUT /sim/faults`. Rates are probabilities 0..1."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(0, ge=0, le=600_000)
    """Added before every protocol answer."""
    slow_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Share of protocol calls delayed by `slow_ms` more (a channel that is sometimes slow)."""
    slow_ms: int = Field(3_000, ge=0, le=600_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Share of protocol calls answered with the channel's internal error (nothing done)."""
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Share of protocol calls that are processed but answered only after `hang_ms`."""
    hang_ms: int = Field(30_000, ge=0, le=600_000)
    outage: bool = False
    """Every protocol call is answered 503 and nothing is processed."""
    decline_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Share of buyer payments that fail instead of succeeding."""
    auto_pay_after_ms: int | None = Field(None, ge=0)
    """Pay every new order automatically after this long (scaled by the time factor)."""
    notify_delay_ms: int = Field(0, ge=0, le=600_000)
    """Wait before the first delivery attempt of each notification."""
    duplicate_notifications: int = Field(0, ge=0, le=10)
    """Deliver each notification this many extra times, each on its own schedule."""
    drop_notifications: int = Field(0, ge=0, le=100)
    """Drop (never send) the first N delivery attempts of each notification."""
    password_entry_ms: int | None = Field(10_000, ge=0, le=600_000)
    """How long a buyer takes to enter the password a barcode payment asks for (scaled by the
    time factor); `None`: the payment waits for `POST /sim/buyer/pay`."""
    refund_delay_ms: int = Field(1_000, ge=0, le=600_000)
    """How long an accepted refund stays processing before it ends (scaled by the time factor)."""
    refund_fail_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Share of accepted refunds that end in failure (WeChat `ABNORMAL`) instead of success."""
    only: list[Operation] | None = None
    """Apply latency, error, timeout and outage only to these operations (None: to all)."""
    misreport_amount: int = Field(0, ge=-1_000_000, le=1_000_000)
    """Minor units added to every amount the channel reports about an order or a refund (in
    query, pay and refund answers, and in notifications), as a channel that contradicts the
    merchant would; the orders themselves keep their real amounts. 0: truthful."""


ProtocolFault = Literal["outage", "error", "timeout"]


class FaultBox:
    """The faults in force and the seeded dice that decide when they strike.

    `faults` applies to every account; `by_account` replaces it for the accounts it names
    (by merchant id: WeChat `mchid`, Alipay `app_id`, UnionPay `merId`), so one simulator can
    hold a healthy account beside a failing one."""

    def __init__(self, rng: random.Random) -> None:
        self.faults = Faults()
        self.by_account: dict[str, Faults] = {}
        self._rng = rng
        self.stopping = asyncio.Event()
        """Set at application shutdown so that injected hangs end at once."""

    def chance(self, rate: float) -> bool:
        """True with probability `rate`."""
        return rate > 0 and self._rng.random() < rate

    def for_account(self, account: str | None) -> Faults:
        """The faults that apply to calls of `account` (None: not known)."""
        if account is not None and account in self.by_account:
            return self.by_account[account]
        return self.faults

    async def before_protocol_call(
        self, operation: Operation | None = None, account: str | None = None
    ) -> ProtocolFault | None:
        """Apply latency, then tell the caller which fault (if any) strikes this call.

        `operation` lets `Faults.only` aim the faults at some calls (say, a create that hangs
        while queries answer); a caller that does not name it is always subject to them.
        `account`: the merchant id the call claims, for faults set for one account.
        """
        faults = self.for_account(account)
        if faults.only is not None and operation is not None and operation not in faults.only:
            return None
        if faults.latency_ms:
            await self.pause(faults.latency_ms / 1000)
        if self.chance(faults.slow_rate):
            await self.pause(faults.slow_ms / 1000)
        if faults.outage:
            return "outage"
        if self.chance(faults.error_rate):
            return "error"
        if self.chance(faults.timeout_rate):
            return "timeout"
        return None

    def reported(self, amount: int) -> int:
        """`amount` as the channel reports it under the `misreport_amount` fault."""
        return max(amount + self.faults.misreport_amount, 0)

    async def hang(self, account: str | None = None) -> None:
        """Hold an answer for `hang_ms`, or until the application shuts down."""
        await self.pause(self.for_account(account).hang_ms / 1000)

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)


def fault_routes(box_key: web.AppKey[FaultBox]) -> list[web.RouteDef]:
    """`PUT /sim/faults` (replace all faults; absent fields reset) and `GET /sim/faults`.

    With `?account=ID` (a merchant id) both act on that account's own faults, which replace
    the simulator-wide ones for its calls; `DELETE /sim/faults?account=ID` drops them. A PUT
    without `account` replaces everything, per-account faults included."""

    def account_of(request: web.Request) -> str | web.Response | None:
        account = request.query.get("account")
        if account is not None and not 0 < len(account) <= 64:
            return control_error(400, "account: 1 to 64 characters", "account")
        return account

    async def get_faults(request: web.Request) -> web.Response:
        account = account_of(request)
        if isinstance(account, web.Response):
            return account
        box = request.app[box_key]
        shown = box.for_account(account).model_dump()
        if account is None:
            shown["accounts"] = {k: v.model_dump() for k, v in box.by_account.items()}
        return web.json_response(shown)

    async def put_faults(request: web.Request) -> web.Response:
        account = account_of(request)
        if isinstance(account, web.Response):
            return account
        raw = await request.read()
        try:
            faults = Faults.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            return control_error(400, *_first_problem(exc))
        box = request.app[box_key]
        if account is None:
            box.faults = faults
            box.by_account = {}
        else:
            box.by_account[account] = faults
        return web.json_response(faults.model_dump())

    async def delete_faults(request: web.Request) -> web.Response:
        account = account_of(request)
        if isinstance(account, web.Response):
            return account
        if account is None:
            return control_error(400, "account: required", "account")
        request.app[box_key].by_account.pop(account, None)
        return web.json_response(request.app[box_key].faults.model_dump())

    return [
        web.get("/sim/faults", get_faults),
        web.put("/sim/faults", put_faults),
        web.delete("/sim/faults", delete_faults),
    ]


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors()[0]
    field_name = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{field_name}: {error['msg']}", field_name


def control_error(status: int, message: str, field_name: str | None = None) -> web.Response:
    """An error answer on the `/sim/` control plane."""
    error: dict[str, str] = {"message": message}
    if field_name:
        error["field"] = field_name
    return web.json_response({"error": error}, status=status)


async def read_json_object(request: web.Request) -> dict[str, object] | web.Response:
    """The request's JSON object, or a 400 control-plane answer saying what is wrong."""
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, RecursionError):
        return control_error(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return control_error(400, "body must be a JSON object")
    return data


@dataclass
class Attempt:
    """One delivery attempt of a notification."""

    at: float
    """Unix time the attempt started."""
    status: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"at": self.at, "status": self.status, "error": self.error}


DeliveryState = Literal["pending", "delivered", "failed", "cancelled"]


@dataclass
class Delivery:
    """One notification on its way to one URL; duplicates are separate deliveries."""

    notification_id: str
    url: str
    body: bytes
    copy: int = 0
    """0 for the original; 1.. for injected duplicates."""
    attempts: list[Attempt] = field(default_factory=list)
    state: DeliveryState = "pending"
    _finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait(self) -> DeliveryState:
        """Wait until the delivery succeeded, gave up, or was cancelled."""
        await self._finished.wait()
        return self.state

    def as_dict(self) -> dict[str, object]:
        return {
            "notification_id": self.notification_id,
            "url": self.url,
            "copy": self.copy,
            "state": self.state,
            "attempts": [attempt.as_dict() for attempt in self.attempts],
        }


SuccessTest = Callable[[int, bytes], bool]
"""The channel's own rule for "the merchant accepted it": (status, body) -> bool."""
HeaderFactory = Callable[[bytes], Mapping[str, str]]
"""Headers for one attempt at posting `body` (signatures are fresh on every attempt)."""


class Notifier:
    """Posts notifications in the background on a retry schedule until the merchant accepts.

    `schedule` lists the waits between attempts in channel seconds (WeChat: 15, 15, 30, 180,
    ...); they are multiplied by `time_factor`. Use it as an async context manager, or add
    `Notifier.cleanup_ctx` to an application: leaving cancels outstanding deliveries, waits
    for them and closes the HTTP session, so no task is left pending.
    """

    def __init__(
        self,
        *,
        schedule: Sequence[float],
        success: SuccessTest,
        time_factor: float = 1.0,
        attempt_timeout: float = 5.0,
    ) -> None:
        self._schedule = tuple(schedule)
        self._success = success
        self._time_factor = time_factor
        self._attempt_timeout = attempt_timeout
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> Notifier:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For `app.cleanup_ctx`: open the session at start-up, close everything at cleanup."""
        async with self:
            yield

    def submit(
        self,
        notification_id: str,
        url: str,
        body: bytes,
        headers: HeaderFactory,
        *,
        delay: float = 0.0,
        duplicates: int = 0,
        drop_first: int = 0,
    ) -> list[Delivery]:
        """Start delivering `body` to `url` (plus `duplicates` extra copies).

        `delay` is real seconds before the first attempt; `drop_first` attempts of each copy
        are recorded but never sent.
        """
        if self._session is None or self._stopping.is_set():
            raise RuntimeError("the notifier is not running")
        deliveries = [
            Delivery(notification_id, url, body, copy=copy) for copy in range(1 + duplicates)
        ]
        for delivery in deliveries:
            task = asyncio.create_task(self._run(delivery, headers, delay, drop_first))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return deliveries

    async def wait_idle(self) -> None:
        """Wait until every delivery submitted so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel outstanding deliveries, wait for them, and close the session."""
        self._stopping.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(
        self, delivery: Delivery, headers: HeaderFactory, delay: float, drop_first: int
    ) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            waits = (0.0, *self._schedule)
            for number, wait in enumerate(waits):
                if wait:
                    await asyncio.sleep(wait * self._time_factor)
                if await self._attempt(delivery, headers, dropped=number < drop_first):
                    delivery.state = "delivered"
                    return
            delivery.state = "failed"
        except asyncio.CancelledError:
            delivery.state = "cancelled"
            raise
        finally:
            delivery._finished.set()

    async def _attempt(self, delivery: Delivery, headers: HeaderFactory, *, dropped: bool) -> bool:
        attempt = Attempt(at=time.time())
        delivery.attempts.append(attempt)
        if dropped:
            attempt.error = "dropped by fault injection"
            return False
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=self._attempt_timeout)
        try:
            async with self._session.post(
                delivery.url,
                data=delivery.body,
                headers=dict(headers(delivery.body)),
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                answer = await response.read()
                attempt.status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            attempt.error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            return False
        accepted = self._success(attempt.status, answer)
        if not accepted:
            attempt.error = "not acknowledged"
        return accepted
