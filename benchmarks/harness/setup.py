"""What a benchmark run measures against: started here, or already running (`--target`).

Started here: a private redis-server (or, with `--redis cluster`, a 3-primary, 3-replica
Redis Cluster), the three simulators in one child process, a routing file naming their
sandbox credential bundles, a merchant created straight in Redis (and the 16 of the spread
scenario), N `payrouter serve` children and the floor process, each on a free loopback port.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import click

from benchmarks.harness import procs
from benchmarks.harness.floor import load_channel
from benchmarks.harness.load import LoadShape
from benchmarks.harness.probes import RedisCounters
from benchmarks.harness.scenarios import SPREAD_MERCHANTS, Receiver, Target
from channels.base import Wallet
from channels.registry import REGISTRY
from router.clock import Clock
from router.routing.config import load_config
from router.settings import Settings
from router.store import open_store

ACCOUNT_NAMES: dict[Wallet, str] = {
    "wechat": "wechat_main",
    "alipay": "alipay_main",
    "unionpay": "unionpay_main",
}


@dataclass(frozen=True)
class BenchOptions:
    """Everything `payrouter bench` was asked for."""

    shape: LoadShape = field(default_factory=LoadShape)
    warmup: int = 16
    processes: tuple[int, ...] = (1, 2)
    scenarios: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    """Already running routers; empty: start everything here."""
    router_pids: tuple[int, ...] = ()
    redis_url: str | None = None
    api_key: str | None = None
    wechat_sim: str = "http://127.0.0.1:8091"
    routing: Path | None = None
    time_factor: float = 0.001
    sandbox_dir: Path | None = None
    command: tuple[str, ...] = ()
    redis: str = "single"
    """What to start: `single` (one redis-server) or `cluster` (3 primaries, 3 replicas)."""
    spread_count: int = 320
    """Creates in the spread measurement (MONITOR on every primary)."""
    risk: str = "shipped"
    """The routers' risk file: `shipped` (config/risk.yaml, rate limits raised out of the
    way: the same work per request, never a 429), `off` (no limits, no rules) or a path."""


@dataclass
class Environment:
    """What is running, and how to reach and watch it."""

    target: Target
    router_pids: list[int]
    """Every running router process (empty when not known): all count as the router."""
    parties: dict[str, list[int]] = field(default_factory=dict)
    """Other processes whose CPU is read: redis, simulators."""
    floor_pid: int | None = None
    redis: RedisCounters | None = None
    redis_version: str = "unknown"
    notes: list[str] = field(default_factory=list)
    grow: Callable[[int], Awaitable[None]] | None = None
    """Start routers until this many run (None: the routers are not ours to start)."""


SHIPPED_RISK = Path(__file__).resolve().parents[2] / "config" / "risk.yaml"
RAISED = "{per_second: 1000000, burst: 1000000}"


def risk_text(choice: str) -> str:
    """The risk file the routers run with (`BenchOptions.risk`)."""
    if choice == "off":
        return "version: 1\nrate_limits:\n  tiers:\n    default: {}\n"
    if choice != "shipped":
        return Path(choice).read_text()
    text = SHIPPED_RISK.read_text()
    # Every budget of the shipped file, as high as allowed: the buckets are still taken.
    return re.sub(r"\{per_second: [0-9.]+, burst: [0-9]+\}", RAISED, text)


def routing_text(ports: dict[Wallet, int], sandbox_dir: Path) -> str:
    """A routing file with one account per simulator, credentials from its sandbox."""
    lines = ["version: 1", "accounts:"]
    for wallet, name in ACCOUNT_NAMES.items():
        lines += [
            f"  {name}:",
            f"    type: {wallet}",
            f"    base_url: http://127.0.0.1:{ports[wallet]}",
            "    livemode: false",
            "    credentials:",
            f"      file: {REGISTRY[wallet].sandbox_credentials(sandbox_dir.resolve())}",
            "    timeouts:",
            "      connect: 2",
            "      total: 10",
        ]
    return "\n".join(lines) + "\n"


def accounts_of(routing: Path) -> dict[Wallet, str]:
    """The first account of each wallet in a routing file."""
    found: dict[Wallet, str] = {}
    for name, account in load_config(routing).config.accounts.items():
        found.setdefault(account.type, name)
    return found


async def create_merchants(
    redis_url: str, secret_key: bytes | None, notify_url: str, count: int = 1
) -> list[str]:
    """Test-mode merchants made straight in Redis; returns their API secrets."""
    store = await open_store(redis_url, Clock(), secret_key)
    secrets = []
    try:
        for index in range(count):
            name = "payrouter bench" + (f" {index}" if index else "")
            _, issued = await store.merchants.create(name, notify_url=notify_url)
            secrets.append(issued.secret)
    finally:
        await store.close()
    return secrets


async def create_merchant(redis_url: str, secret_key: bytes | None, notify_url: str) -> str:
    """A test-mode merchant made straight in Redis; returns its API secret."""
    return (await create_merchants(redis_url, secret_key, notify_url))[0]


async def spread_keys(
    options: BenchOptions, redis_url: str, secret_key: bytes | None, notify_url: str
) -> list[str]:
    """The spread scenario's merchants' API secrets, when that scenario runs."""
    if "spread-wechat" not in options.scenarios:
        return []
    return await create_merchants(redis_url, secret_key, notify_url, SPREAD_MERCHANTS)


async def start_redis(
    options: BenchOptions, children: procs.Children, say: Callable[[str], None]
) -> tuple[str, dict[str, list[int]]]:
    """The Redis `--redis` asks for; its URL and the pids whose CPU counts as Redis's."""
    if options.redis == "cluster":
        cluster, url = await procs.start_redis_cluster(children)
        roles = await asyncio.to_thread(cluster.roles)
        pids = {
            name: [cluster.nodes[port].pid for port, role in roles.items() if role == wanted]
            for name, wanted in (("redis", "master"), ("redis-replicas", "slave"))
        }
        say(f"redis cluster {url} (primaries pids {pids['redis']})")
        return url, pids
    redis, url = await procs.start_redis(children)
    say(f"redis-server {url} (pid {redis.pid})")
    return url, {"redis": [redis.pid]}


async def start_record(children: procs.Children, say: Callable[[str], None]) -> str:
    """A private PostgreSQL with a migrated database for the routers' record (`serve` with a
    Redis needs one); its PAYROUTER_DATABASE_URL."""
    from benchmarks.harness.postgres import start_postgres
    from router.record import open_record

    server = await asyncio.to_thread(start_postgres)
    children.blocking_stops.append(server.stop)
    url = await asyncio.to_thread(server.create_database, "payrouter")
    record = await open_record(url)
    try:
        await record.migrate()
    finally:
        await record.close()
    say(f"postgresql {server.url('payrouter')}")
    return url


async def start_everything(
    options: BenchOptions,
    session: aiohttp.ClientSession,
    children: procs.Children,
    receiver: Receiver,
    say: Callable[[str], None],
) -> Environment:
    workdir = children.workdir
    sandbox_dir = options.sandbox_dir or workdir / "sandbox"
    redis_url, redis_pids = await start_redis(options, children, say)
    database_url = await start_record(children, say)
    ports: dict[Wallet, int] = {wallet: procs.free_port() for wallet in ACCOUNT_NAMES}
    sims = await procs.start_simulators(
        children, sandbox_dir, {str(k): v for k, v in ports.items()}, options.time_factor
    )
    say(f"simulators {ports} (pid {sims.pid}, time factor {options.time_factor})")
    routing = workdir / "routing.yaml"
    routing.write_text(routing_text(ports, sandbox_dir))
    risk = workdir / "risk.yaml"
    risk.write_text(risk_text(options.risk))
    say(f"risk file: {options.risk}")
    key = os.urandom(32)
    api_key = await create_merchant(redis_url, key, receiver.url)
    secret_key = base64.b64encode(key).decode()
    spread = await spread_keys(options, redis_url, key, receiver.url)

    async def start_routers(first: int, count: int) -> list[procs.Child]:
        envs = [
            procs.router_env(os.environ, redis_url, routing, procs.free_port(), secret_key)
            | {"PAYROUTER_RISK": str(risk)}
            | {"PAYROUTER_DATABASE_URL": database_url}
            for _ in range(count)
        ]
        started = await asyncio.gather(
            *(procs.start_router(children, first + i, e, session) for i, e in enumerate(envs))
        )
        say("routers " + ", ".join(f"{r.url} (pid {r.pid})" for r in started))
        return list(started)

    routers = await start_routers(0, options.processes[0])
    accounts = dict(ACCOUNT_NAMES)
    target = Target(
        session=session,
        routers=[r.url for r in routers],
        api_key=api_key,
        accounts=accounts,
        wechat_sim=f"http://127.0.0.1:{ports['wechat']}",
        receiver=receiver,
        direct=load_channel(routing, accounts["wechat"], session),
        spread_keys=spread,
    )
    env = Environment(
        target=target,
        router_pids=[r.pid for r in routers],
        parties=redis_pids | {"simulators": [sims.pid]},
        redis=await RedisCounters.connect(redis_url),
    )
    env.redis_version = await env.redis.version() if env.redis else "unknown"

    async def grow(count: int) -> None:
        more = await start_routers(len(target.routers), count - len(target.routers))
        target.routers += [r.url for r in more]
        env.router_pids += [r.pid for r in more]

    env.grow = grow
    if "floor-wechat" in options.scenarios:
        floor = await procs.start_floor(
            children, redis_url, routing, accounts["wechat"], procs.free_port()
        )
        say(f"floor {floor.url} (pid {floor.pid})")
        target.floor_url = floor.url
        env.floor_pid = floor.pid
    return env


async def attach(
    options: BenchOptions,
    session: aiohttp.ClientSession,
    children: procs.Children,
    receiver: Receiver,
    say: Callable[[str], None],
) -> Environment:
    """Use already-running routers (`--target`) and simulators."""
    routing = options.routing or Settings.from_env().routing_path
    accounts = accounts_of(routing)
    missing = sorted(set(ACCOUNT_NAMES) - set(accounts))
    api_key = options.api_key
    if api_key is None:
        if options.redis_url is None:
            raise click.UsageError("--target needs --api-key (or --redis-url to create one)")
        api_key = await create_merchant(
            options.redis_url, Settings.from_env().secret_key, receiver.url
        )
    target = Target(
        session=session,
        routers=[url.rstrip("/") for url in options.targets],
        api_key=api_key,
        accounts=accounts,
        wechat_sim=options.wechat_sim.rstrip("/"),
        receiver=receiver,
        direct=load_channel(routing, accounts["wechat"], session) if "wechat" in accounts else None,
    )
    env = Environment(target=target, router_pids=list(options.router_pids))
    if missing:
        env.notes.append(f"{routing} has no account for {', '.join(missing)}")
    if not options.router_pids:
        env.notes.append("router CPU not measured: give --router-pid")
    if options.redis_url is None:
        env.notes.append("Redis statistics and the floor not measured: give --redis-url")
        return env
    env.redis = await RedisCounters.connect(options.redis_url)
    env.redis_version = await env.redis.version()
    target.spread_keys = await spread_keys(
        options, options.redis_url, Settings.from_env().secret_key, receiver.url
    )
    if "floor-wechat" in options.scenarios and "wechat" in accounts:
        floor = await procs.start_floor(
            children, options.redis_url, routing, accounts["wechat"], procs.free_port()
        )
        say(f"floor {floor.url} (pid {floor.pid})")
        target.floor_url = floor.url
        env.floor_pid = floor.pid
    return env
