"""`payrouter bench`: how fast the router is, what it costs per payment, and how it scales."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from benchmarks.harness.harness import run_bench
from benchmarks.harness.load import COUNT_CAP, LoadShape
from benchmarks.harness.probes import addresses_of
from benchmarks.harness.procs import StartError
from benchmarks.harness.report import render
from benchmarks.harness.routing_quality import run_routing_quality
from benchmarks.harness.routing_stats import render_routing
from benchmarks.harness.scenarios import SCENARIOS
from benchmarks.harness.setup import BenchOptions
from router.cli.common import FiniteFloatRange, not_blank, run_async
from router.settings import redacted
from router.store.connect import CLUSTER_SCHEME
from router.urls import url_problem

MAX_RATE = 100_000.0
"""Operations per second: far beyond what one machine's loopback can take."""
WITH_TARGET = ("router_pids", "redis_url", "api_key", "routing", "wechat_sim")
"""Options that only describe already-running routers (`--target`)."""
WITHOUT_TARGET = ("redis",)
"""Options that only describe what bench starts itself (not with `--target`)."""


def _processes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    parts = [part.strip() for part in value.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise click.BadParameter(f"{value!r}: use counts like 1,2")
    counts = tuple(int(part) for part in parts)
    if any(c < 1 or c > 16 for c in counts):
        raise click.BadParameter(f"{value!r}: counts from 1 to 16")
    return counts


def _scenarios(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if value is None:
        return SCENARIOS
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    if not wanted:
        raise click.BadParameter(f"name at least one of: {', '.join(SCENARIOS)}")
    unknown = sorted(set(wanted) - set(SCENARIOS))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return tuple(name for name in SCENARIOS if name in wanted)


def _http_urls(
    ctx: click.Context, param: click.Parameter, value: str | tuple[str, ...]
) -> str | tuple[str, ...]:
    for url in (value,) if isinstance(value, str) else value:
        if (problem := url_problem(url)) is not None:
            raise click.BadParameter(f"{url!r} {problem}")
    return value


def _redis_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # The statistics probe speaks RESP over plain TCP: redis:// with a host, or
    # redis+cluster:// with seed nodes (it finds every primary from the first).
    if value is not None:
        try:
            seeds, _ = addresses_of(value)
            scheme = urlsplit(value).scheme
        except ValueError:
            raise click.BadParameter(f"{redacted(value)!r} is not a URL") from None
        if scheme not in ("redis", CLUSTER_SCHEME) or not all(s.host and s.port for s in seeds):
            raise click.BadParameter(
                f"{redacted(value)!r}: use redis://host[:port][/db], e.g. "
                "redis://127.0.0.1:6379/0, or redis+cluster://host:port[,host:port...]"
            )
    return value


def _from_command_line(ctx: click.Context, names: tuple[str, ...]) -> list[str]:
    return [
        param.opts[0]
        for param in ctx.command.params
        if param.name in names
        and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
    ]


def _only_with_target(ctx: click.Context, targets: tuple[str, ...]) -> None:
    if targets:
        started = _from_command_line(ctx, WITHOUT_TARGET)
        if started:
            raise click.UsageError(
                f"{', '.join(started)}: only without --target (it says what bench starts); "
                "with --target, --redis-url names the Redis the routers use"
            )
        return
    given = _from_command_line(ctx, WITH_TARGET)
    if given:
        raise click.UsageError(
            f"{', '.join(given)}: only with --target URL (routers already running); without "
            "--target, bench starts everything itself"
        )


@click.command("bench")
@click.option(
    "--duration",
    type=FiniteFloatRange(0, LoadShape.time_cap_s, min_open=True),
    default=None,
    help=f"Seconds per scenario, at most {LoadShape.time_cap_s:g} [default: 8].",
)
@click.option(
    "--count",
    type=click.IntRange(1, COUNT_CAP),
    default=None,
    help="Operations per scenario (instead).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, LoadShape.max_in_flight),
    default=8,
    show_default=True,
)
@click.option(
    "--rate",
    type=FiniteFloatRange(0, MAX_RATE, min_open=True),
    default=None,
    help="Fixed rate per second (open loop).",
)
@click.option(
    "--warmup",
    type=click.IntRange(0, COUNT_CAP),
    default=None,
    help="Unmeasured ops first [2×concurrency].",
)
@click.option(
    "--processes",
    default="1,2",
    show_default=True,
    callback=_processes,
    help="Router counts to compare (1 to 16 each).",
)
@click.option(
    "--scenarios",
    default=None,
    callback=_scenarios,
    help=f"A subset of: {', '.join(SCENARIOS)}.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--json-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also save it.",
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    callback=_http_urls,
    help="A running router URL (repeatable).",
)
@click.option(
    "--router-pid", "router_pids", type=click.IntRange(min=1), multiple=True, help="With --target."
)
@click.option(
    "--redis-url",
    default=None,
    callback=_redis_url,
    help="With --target: Redis statistics and floor.",
)
@click.option(
    "--api-key",
    envvar="PAYROUTER_BENCH_API_KEY",
    default=None,
    callback=not_blank,
    help="With --target.",
)
@click.option(
    "--wechat-sim",
    default="http://127.0.0.1:8091",
    show_default=True,
    callback=_http_urls,
    help="With --target.",
)
@click.option(
    "--routing",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --target.",
)
@click.option(
    "--time-factor",
    type=FiniteFloatRange(0, 1000, min_open=True),
    default=0.001,
    show_default=True,
    help="Scale of the simulators' notification delays (above 0, at most 1000).",
)
@click.option("--sandbox-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--redis",
    type=click.Choice(["single", "cluster"]),
    default="single",
    show_default=True,
    help="Start one redis-server, or a Redis Cluster of 3 primaries and 3 replicas.",
)
@click.option(
    "--spread-count",
    type=click.IntRange(1, COUNT_CAP),
    default=320,
    show_default=True,
    help="spread-wechat creates watched with MONITOR (where commands land).",
)
@click.option(
    "--risk",
    default="shipped",
    show_default=True,
    help="Risk file of the routers: shipped (config/risk.yaml, limits raised), off, or a path.",
)
@click.option(
    "--routing-quality",
    is_flag=True,
    help="Instead of the load scenarios: how each routing strategy follows shifting "
    "channel health, beside an oracle (docs/routing.md).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="With --routing-quality: short phases (a smoke run, not the targets' numbers).",
)
@click.option(
    "--runs",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="With --routing-quality: runs pooled in the report.",
)
@click.pass_context
def bench(
    ctx: click.Context,
    duration: float | None,
    count: int | None,
    concurrency: int,
    rate: float | None,
    warmup: int | None,
    processes: tuple[int, ...],
    scenarios: tuple[str, ...],
    as_json: bool,
    json_file: Path | None,
    targets: tuple[str, ...],
    router_pids: tuple[int, ...],
    redis_url: str | None,
    api_key: str | None,
    wechat_sim: str,
    routing: Path | None,
    time_factor: float,
    sandbox_dir: Path | None,
    redis: str,
    spread_count: int,
    risk: str,
    routing_quality: bool,
    quick: bool,
    runs: int,
) -> None:
    """Benchmark the router on loopback and print latency, throughput, CPU and Redis cost.

    Unless --target is given it starts everything itself: a private redis-server (or a
    Redis Cluster, --redis cluster), the channel simulators, a webhook receiver, the routers
    (`payrouter serve`, one per --processes count) and the floor (the least work a router
    must do per payment). Every scenario is bounded by --duration (or --count, capped at
    90 s). Scenarios: create-qr-wechat|alipay|unionpay, floor-wechat, direct-wechat (the
    simulator with no router in between), lifecycle-wechat (create, pay, webhook),
    refund-wechat and spread-wechat (16 merchants, one sending half; then --spread-count more
    creates watched with MONITOR: the share of commands on the busiest slot and node).
    With --routing-quality it runs the routing scenario instead (`--quick`, `--runs`).
    """
    _only_with_target(ctx, targets)
    if routing_quality:
        _routing_quality(quick, runs, as_json, json_file)
        return
    shape = LoadShape(
        concurrency=concurrency,
        rate=rate,
        duration_s=duration if duration is not None or count is not None else 8.0,
        count=count,
    )
    options = BenchOptions(
        shape=shape,
        warmup=2 * concurrency if warmup is None else warmup,
        processes=processes,
        scenarios=scenarios,
        targets=targets,
        router_pids=router_pids,
        redis_url=redis_url,
        api_key=api_key,
        wechat_sim=wechat_sim,
        routing=routing,
        time_factor=time_factor,
        sandbox_dir=sandbox_dir,
        command=("payrouter", *sys.argv[1:]),
        redis=redis,
        spread_count=spread_count,
        risk=risk,
    )

    def say(text: str) -> None:
        click.echo(text, err=True)

    async def go() -> dict[str, object]:
        try:
            return await run_bench(options, say)
        except StartError as exc:
            raise click.ClickException(str(exc)) from None

    report = run_async(go)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if json_file is not None:
        json_file.write_text(text + "\n")
    click.echo(text if as_json else render(report))


def _routing_quality(quick: bool, runs: int, as_json: bool, json_file: Path | None) -> None:
    async def go() -> dict[str, object]:
        try:
            return await run_routing_quality(
                quick=quick, runs=runs, say=lambda text: click.echo(text, err=True)
            )
        except StartError as exc:
            raise click.ClickException(str(exc)) from None

    report = run_async(go)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if json_file is not None:
        json_file.write_text(text + "\n")
    click.echo(text if as_json else render_routing(report))
