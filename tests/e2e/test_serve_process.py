"""`payrouter serve` as operators run it: a real process, reloaded with SIGHUP."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.conftest import loopback_socket
from tests.e2e.conftest import Processes, RouterProcess, Simulator, eventually, routing_yaml


async def reloads(http: aiohttp.ClientSession, url: str, outcome: str) -> float:
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    prefix = f'payrouter_config_reloads_total{{outcome="{outcome}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].split()[-1]) if lines else 0.0


async def test_sighup_reloads_and_refuses_a_bad_file(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    processes: Processes,
) -> None:
    config = tmp_path / "routing.yaml"
    config.write_text(routing_yaml(simulator))
    with loopback_socket() as probe:
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    router = RouterProcess(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PAYROUTER_REDIS_URL": redis_url,
            "PAYROUTER_DATABASE_URL": processes.database_url,
            "PAYROUTER_ROUTING": str(config),
            "PAYROUTER_PORT": str(port),
        }
    )
    processes.append(router)
    await router.start(url)
    assert router.proc is not None

    router.proc.send_signal(signal.SIGHUP)

    async def unchanged() -> bool | None:
        return True if await reloads(http, url, "unchanged") >= 1 else None

    await eventually(unchanged)
    config.write_text("version: 1\naccounts: {}\n")
    router.proc.send_signal(signal.SIGHUP)

    async def refused() -> bool | None:
        return True if await reloads(http, url, "refused") >= 1 else None

    await eventually(refused)
    async with http.get(f"{url}/readyz") as resp:
        assert resp.status == 200  # the last good config stays in force
