"""End-to-end fixtures: a real WeChat Pay simulator and a real router, on loopback ports,
sharing a real redis-server. Nothing here mocks HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from channels.sim.kit import SimulatorSettings
from channels.wechat.sandbox import SandboxAccount, ensure_sandbox
from channels.wechat.sim.app import build_app as build_simulator
from router.api.middleware import RUNTIME
from router.app import WORKER, build_app
from router.clock import ShiftedClock
from router.payments.worker import RequeryWorker
from router.settings import Settings, Workers
from tests.channels.harness import Harness, HarnessFactory
from tests.conftest import loopback_socket, serve, url_of

T = TypeVar("T")


@dataclass
class Simulator:
    url: str
    sandbox: SandboxAccount


@dataclass
class Router:
    url: str
    app: web.Application
    secret: str
    key_id: str
    merchant_id: str
    clock: ShiftedClock
    http: aiohttp.ClientSession

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    @property
    def worker(self) -> RequeryWorker:
        return self.app[WORKER]

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
        async with self.http.request(
            method, self.url + path, json=json, headers=self.auth | (headers or {})
        ) as resp:
            return resp.status, await resp.json(), resp.headers

    async def create(self, **fields: Any) -> tuple[int, dict[str, Any]]:
        body = {"amount": 1999, "description": "Demo", "method": "qr"} | fields
        body.setdefault("merchant_order_id", f"A{time.monotonic_ns()}")
        status, data, _ = await self.request("POST", "/v1/payments", json=body)
        return status, data

    async def payment(self, pay_id: str) -> dict[str, Any]:
        status, data, _ = await self.request("GET", f"/v1/payments/{pay_id}")
        assert status == 200, data
        return data

    async def wait_status(self, pay_id: str, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            data = await self.payment(pay_id)
            return data if data["status"] == wanted else None

        return await eventually(check, timeout)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Poll `check` until it returns a value; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def start_simulator(sandbox_dir: Path, serving: list[web.AppRunner]) -> Simulator:
    """A WeChat Pay simulator on a loopback port, its keys under `sandbox_dir`."""
    sock = loopback_socket()
    url = url_of(sock)
    settings = SimulatorSettings(
        sandbox_dir=sandbox_dir, seed=7, time_factor=0.001, public_base_url=url
    )
    serving.append(await serve(build_simulator(settings), sock))
    return Simulator(url=url, sandbox=ensure_sandbox(sandbox_dir))


@pytest.fixture
async def simulator(tmp_path: Path, serving: list[web.AppRunner]) -> Simulator:
    return await start_simulator(tmp_path / "sandbox", serving)


def account_yaml(name: str, simulator: Simulator, total_timeout: float = 3.0) -> str:
    return f"""\
  {name}:
    type: wechat
    base_url: {simulator.url}
    credentials:
      file: {simulator.sandbox.credentials_path}
    timeouts:
      connect: 1
      total: {total_timeout}
"""


def routing_yaml(simulator: Simulator, total_timeout: float = 3.0) -> str:
    return "version: 1\naccounts:\n" + account_yaml("wechat_main", simulator, total_timeout)


ADMIN_TOKEN = "admin-token-for-tests"
FAST_WEBHOOKS = (0.0, 0.2, 0.2, 0.2)
"""Webhook retry waits in the end-to-end tests: four attempts within a second."""
FAST_WORKERS = Workers(
    poll_interval_s=0.05, requery_after_s=0.3, requery_max_s=1.0, processing_grace_s=5.0
)


async def start_router(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    *,
    run_worker: bool = False,
    workers: Workers = FAST_WORKERS,
    merchant: tuple[str, str, str] | None = None,
    config_text: str | None = None,
    watch_config: bool = False,
    overrides: dict[str, Any] | None = None,
    idempotency_lease_s: float = 10.0,
) -> Router:
    """A router serving on a loopback port; `overrides` replace fields of its `Settings`."""
    config = tmp_path / "routing.yaml"
    config.write_text(config_text or routing_yaml(simulator))
    sock = loopback_socket()
    url = url_of(sock)
    settings = Settings(
        redis_url=redis_url,
        routing_path=config,
        # The record: an embedded database in the test's folder (one process).
        sandbox_dir=tmp_path / "sandbox",
        public_url=url,
        admin_token=ADMIN_TOKEN,
        config_poll_s=0.05,
        workers=workers,
        webhook_schedule=FAST_WEBHOOKS,
        webhook_timeout_s=2.0,
        idempotency_lease_s=idempotency_lease_s,
    )
    settings = replace(settings, **(overrides or {}))
    clock = ShiftedClock()
    app = await build_app(settings, clock=clock, run_worker=run_worker, watch_config=watch_config)
    serving.append(await serve(app, sock))
    if merchant is None:
        created, issued = await app[RUNTIME].store.merchants.create("Shop")
        merchant = (created.id, issued.key.id, issued.secret)
    mch, key_id, secret = merchant
    return Router(url, app, secret, key_id, mch, clock, http)


@pytest.fixture
async def router(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    """A router with its worker stopped: tests drive the worker's `run_once()` themselves."""
    return await start_router(redis_url, simulator, tmp_path, serving, http)


async def sim_json(
    http: aiohttp.ClientSession, simulator: Simulator, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, simulator.url + path, json=body) as resp:
        text = await resp.text()
        return resp.status, (await resp.json(content_type=None)) if text else None


class RouterProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, url: str) -> None:
        exe = Path(sys.executable).with_name("payrouter")
        self.proc = await asyncio.create_subprocess_exec(
            str(exe),
            "serve",
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as http:

            async def up() -> bool | None:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/readyz") as resp:
                        return True if resp.status == 200 else None
                return None

            await eventually(up, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), timeout=20)


class Processes(list[RouterProcess]):
    """Router processes a test starts, and the record they share (`serve` with a Redis
    needs PAYROUTER_DATABASE_URL)."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.database_url = database_url


@pytest.fixture
async def processes(postgres_migrated_url: str) -> AsyncIterator[Processes]:
    """Router processes a test starts, on a new database of the session's PostgreSQL;
    stopped (SIGTERM) afterwards."""
    started = Processes(postgres_migrated_url)
    yield started
    for proc in started:
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            await proc.stop()


WALLETS = ("wechat", "alipay", "unionpay")
"""The wallets of the `multi` router: one account each, `<wallet>_main`, on its simulator."""


def credentials(wallet: str, folder: Path) -> Path:
    sandbox = importlib.import_module(f"channels.{wallet}.sandbox")
    path: Path = sandbox.credentials_path(folder / "sandbox")
    return path


def routing(harnesses: dict[str, Harness], folders: dict[str, Path]) -> str:
    lines = ["version: 1", "accounts:"]
    for wallet, h in harnesses.items():
        lines += [
            f"  {wallet}_main:",
            f"    type: {wallet}",
            f"    base_url: {h.sim_url}",
            f"    credentials: {{file: {credentials(wallet, folders[wallet])}}}",
            "    timeouts: {connect: 1, total: 3}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def harnesses(
    tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[dict[str, Harness], dict[str, Path]]]:
    """The contract suite's three simulators (and their sandbox folders), by wallet."""
    async with AsyncExitStack() as stack:
        found: dict[str, Harness] = {}
        folders: dict[str, Path] = {}
        for wallet in WALLETS:
            module = importlib.import_module(f"tests.channels.harnesses.{wallet}")
            factory: HarnessFactory = module.harness
            folders[wallet] = tmp_path / wallet
            folders[wallet].mkdir()
            found[wallet] = await stack.enter_async_context(factory(folders[wallet], http))
        yield found, folders


@pytest.fixture
async def multi(
    redis_url: str,
    harnesses: tuple[dict[str, Harness], dict[str, Path]],
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    """A router (worker running) with one account per wallet, `<wallet>_main`."""
    found, folders = harnesses
    placeholder = Simulator(url="", sandbox=None)  # type: ignore[arg-type]
    return await start_router(
        redis_url,
        placeholder,
        tmp_path,
        serving,
        http,
        config_text=routing(found, folders),
        run_worker=True,
    )


def channel_calls(router: Router, account: str) -> dict[str, int]:
    """The channel calls `router` made to `account`, per operation (its own
    `payrouter_channel_calls_total`)."""
    found: dict[str, int] = {}
    for family in router.app[RUNTIME].metrics.channel_calls.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["account"] == account:
                operation = sample.labels["operation"]
                found[operation] = found.get(operation, 0) + int(sample.value)
    return found
