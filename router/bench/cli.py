"""`payrouter bench`: how fast the router is, what it costs per payment, and how it scales."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from router.bench.harness import run_bench
from router.bench.load import LoadShape
from router.bench.procs import StartError
from router.bench.report import render
from router.bench.scenarios import SCENARIOS
from router.bench.setup import BenchOptions
from router.cli import _run, main


def _processes(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: use counts like 1,2") from None
    if not counts or any(c < 1 or c > 16 for c in counts):
        raise click.BadParameter(f"{value!r}: counts from 1 to 16")
    return counts


def _scenarios(value: str | None) -> tuple[str, ...]:
    if not value:
        return SCENARIOS
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(wanted) - set(SCENARIOS))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return tuple(name for name in SCENARIOS if name in wanted)


@main.command("bench")
@click.option("--duration", type=float, default=None, help="Seconds per scenario [default: 8].")
@click.option("--count", type=int, default=None, help="Operations per scenario (instead).")
@click.option("--concurrency", type=int, default=8, show_default=True)
@click.option("--rate", type=float, default=None, help="Fixed rate per second (open loop).")
@click.option("--warmup", type=int, default=None, help="Unmeasured ops first [2×concurrency].")
@click.option("--processes", default="1,2", show_default=True, help="Router counts to compare.")
@click.option("--scenarios", default=None, help=f"A subset of: {', '.join(SCENARIOS)}.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--json-file", type=click.Path(path_type=Path), default=None, help="Also save it.")
@click.option("--target", "targets", multiple=True, help="A running router URL (repeatable).")
@click.option("--router-pid", "router_pids", type=int, multiple=True, help="With --target.")
@click.option("--redis-url", default=None, help="With --target: Redis statistics and floor.")
@click.option("--api-key", envvar="PAYROUTER_BENCH_API_KEY", default=None, help="With --target.")
@click.option("--wechat-sim", default="http://127.0.0.1:8091", show_default=True)
@click.option("--routing", type=click.Path(path_type=Path), default=None, help="With --target.")
@click.option("--time-factor", type=float, default=0.001, show_default=True)
@click.option("--sandbox-dir", type=click.Path(path_type=Path), default=None)
def bench(
    duration: float | None,
    count: int | None,
    concurrency: int,
    rate: float | None,
    warmup: int | None,
    processes: str,
    scenarios: str | None,
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
) -> None:
    """Benchmark the router on loopback and print latency, throughput, CPU and Redis cost.

    Unless --target is given it starts everything itself: a private redis-server, the
    channel simulators, a webhook receiver, the routers (`payrouter serve`, one per
    --processes count) and the floor (the least work a router must do per payment).
    Every scenario is bounded by --duration (or --count, capped at 90 s). Scenarios:
    create-qr-wechat|alipay|unionpay, floor-wechat, direct-wechat (the simulator with no
    router in between), lifecycle-wechat (create, pay, webhook) and refund-wechat.
    """
    if concurrency < 1:
        raise click.BadParameter("must be at least 1", param_hint="--concurrency")
    if rate is not None and rate <= 0:
        raise click.BadParameter("must be positive", param_hint="--rate")
    if count is not None and count < 1:
        raise click.BadParameter("must be at least 1", param_hint="--count")
    shape = LoadShape(
        concurrency=concurrency,
        rate=rate,
        duration_s=duration if duration is not None or count is not None else 8.0,
        count=count,
    )
    options = BenchOptions(
        shape=shape,
        warmup=2 * concurrency if warmup is None else max(0, warmup),
        processes=_processes(processes),
        scenarios=_scenarios(scenarios),
        targets=targets,
        router_pids=router_pids,
        redis_url=redis_url,
        api_key=api_key,
        wechat_sim=wechat_sim,
        routing=routing,
        time_factor=time_factor,
        sandbox_dir=sandbox_dir,
        command=("payrouter", *sys.argv[1:]),
    )

    def say(text: str) -> None:
        click.echo(text, err=True)

    async def go() -> dict[str, object]:
        try:
            return await run_bench(options, say)
        except StartError as exc:
            raise click.ClickException(str(exc)) from None

    report = _run(go)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if json_file is not None:
        json_file.write_text(text + "\n")
    click.echo(text if as_json else render(report))
