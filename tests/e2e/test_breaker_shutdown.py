"""A router writes the breaker successes it has tallied when it shuts down: a create's success
reaches the shared health window even if the router stops before its next flush."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from router.clock import Clock
from router.routing.health import Breakers, BreakerSettings, HealthSettings
from router.store import open_store
from tests.e2e.conftest import Simulator, routing_yaml, start_router

pytestmark = pytest.mark.every_topology

SLOW_FLUSH = "health:\n  flush_s: 5\n"


async def test_shutdown_flushes_the_tally(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await start_router(
        redis_url,
        simulator,
        tmp_path,
        serving,
        http,
        config_text=routing_yaml(simulator) + SLOW_FLUSH,
    )
    for _ in range(3):
        assert (await router.create())[0] == 201
    await serving.pop().cleanup()  # the router, started last

    store = await open_store(redis_url, Clock())
    try:
        breakers = Breakers(store.breakers, Clock(), lambda: (HealthSettings(), BreakerSettings()))
        view = (await breakers.snapshot(["wechat_main"]))["wechat_main"]
    finally:
        await store.close()
    assert (view.calls, view.failures) == (3, 0)
