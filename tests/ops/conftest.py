"""A real router and WeChat Pay simulator (on loopback, sharing a real redis-server) for the
operations tests; the end-to-end suite's helpers build them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.conftest import Router, Simulator, start_router, start_simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def simulator(tmp_path: Path, serving: list[web.AppRunner]) -> Simulator:
    return await start_simulator(tmp_path / "sandbox", serving)


@pytest.fixture
async def router(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    return await start_router(redis_url, simulator, tmp_path, serving, http)


async def scrape(router: Router) -> str:
    """The router's `/metrics` text."""
    async with router.http.get(router.url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()
