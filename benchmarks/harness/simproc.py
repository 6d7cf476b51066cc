"""The channel simulators as the benchmark's child process: `payrouter sim` on chosen ports.

    python -m benchmarks.harness.simproc --sandbox-dir DIR --time-factor 0.001 \\
        --port wechat=PORT --port alipay=PORT --port unionpay=PORT

Prints one line, `ready`, on stdout once every simulator listens, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from router.cli.serving import (
    SIMULATORS,
    SimulatorOptions,
    start_simulators,
    stop_all,
    wait_for_stop,
)


def parse_ports(items: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """`("wechat=8091", ...)` → `(("wechat", 8091), ...)`. Raises `click.BadParameter`."""
    out = []
    for item in items:
        name, _, port = item.partition("=")
        if name not in SIMULATORS or not (port.isascii() and port.isdigit()) or len(port) > 5:
            raise click.BadParameter(f"{item!r}: use CHANNEL=PORT, CHANNEL one of {SIMULATORS}")
        out.append((name, int(port)))
    return tuple(out)


@click.command()
@click.option("--sandbox-dir", type=click.Path(path_type=Path), required=True)
@click.option("--time-factor", type=float, default=0.001, show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--port", "ports", multiple=True, required=True, help="CHANNEL=PORT, repeatable.")
def main(sandbox_dir: Path, time_factor: float, seed: int | None, ports: tuple[str, ...]) -> None:
    """Serve the simulators until SIGTERM or SIGINT."""
    options = SimulatorOptions(
        sandbox_dir=sandbox_dir, seed=seed, time_factor=time_factor, ports=parse_ports(ports)
    )

    async def run() -> None:
        runners = await start_simulators(options)
        click.echo("ready")  # the parent waits for this line
        sys.stdout.flush()
        try:
            await wait_for_stop()
        finally:
            await stop_all(runners)

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
