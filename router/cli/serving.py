"""Running the router and the simulators as servers until the process is told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from channels.registry import REGISTRY
from channels.sim.kit import SimulatorSettings
from router.logs import Runner
from router.settings import ConfigurationError

SIMULATOR_PORTS = {wallet: spec.simulator_port for wallet, spec in REGISTRY.items()}
"""Default ports, also named by the shipped config/routing.yaml."""
SIMULATORS: dict[str, Callable[[SimulatorSettings], web.Application]] = {
    wallet: spec.build_simulator for wallet, spec in REGISTRY.items()
}


@dataclass(frozen=True)
class SimulatorOptions:
    host: str = "127.0.0.1"
    sandbox_dir: Path = Path(".sandbox")
    seed: int | None = None
    time_factor: float = 1.0
    ports: tuple[tuple[str, int], ...] = tuple(SIMULATOR_PORTS.items())
    accounts: int = 1
    """Sandbox merchant accounts per simulator."""


async def start_site(
    app: web.Application, host: str, port: int, *, what: str = "the router (PAYROUTER_PORT)"
) -> web.AppRunner:
    """Serve `app` on host:port. Raises `ConfigurationError` naming `what` and the address
    when it cannot listen there (port in use, host not on this machine)."""
    runner = Runner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is already in use"
        raise ConfigurationError(f"{what} cannot listen on {host}:{port}: {reason}") from None
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def start_simulators(options: SimulatorOptions) -> list[web.AppRunner]:
    runners = []
    for channel, port in options.ports:
        settings = SimulatorSettings(
            sandbox_dir=options.sandbox_dir,
            seed=options.seed,
            time_factor=options.time_factor,
            public_base_url=f"http://{options.host}:{port}",
            accounts=options.accounts,
        )
        app = SIMULATORS[channel](settings)
        try:
            runners.append(
                await start_site(app, options.host, port, what=f"the {channel} simulator")
            )
        except BaseException:
            await stop_all(runners)
            raise
    return runners


def stop_signals(on_hangup: Callable[[], object] | None = None) -> asyncio.Event:
    """An event SIGINT or SIGTERM will set; SIGHUP calls `on_hangup` (reload the routing
    file). Installed at once: call it before telling anyone the process is ready, so a
    signal sent on reading that is handled, not a KeyboardInterrupt."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if on_hangup is not None:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, on_hangup)
    return stop


async def wait_for_stop(on_hangup: Callable[[], object] | None = None) -> None:
    """Return on SIGINT or SIGTERM; call `on_hangup` on SIGHUP (reload the routing file)."""
    await stop_signals(on_hangup).wait()


async def stop_all(runners: list[web.AppRunner]) -> None:
    for runner in reversed(runners):
        await runner.cleanup()
