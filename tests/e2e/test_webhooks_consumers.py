"""Consumers of the `dispatch` group do not pile up, one per process start, and a consumer is
never removed while it holds entries (that would drop them from the group). Real redis-server,
real routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from router.clock import Clock
from router.store import Store, keys, open_store
from router.store.events import GROUP
from tests.e2e.conftest import Simulator, eventually, start_router

pytestmark = pytest.mark.every_topology

MCH = "mch_consumers"
PART = 7
"""The partition whose outbox these tests write to (any one behaves the same)."""


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = await open_store(redis_url, Clock())
    yield opened
    await opened.close()


async def consumers(redis: aioredis.Redis) -> list[str]:
    """The consumers of the group on the test partition's outbox."""
    try:
        rows = await redis.xinfo_consumers(keys.outbox(PART), GROUP)
    except aioredis.ResponseError:
        return []
    return sorted(str(row["name"]) for row in rows)


async def test_a_consumer_holding_entries_is_kept_until_they_are_claimed(store: Store) -> None:
    events = store.events
    await events.ensure_groups()
    await store.redis.xadd(keys.outbox(PART), {"event": "evt_held", "mch": MCH})
    await store.redis.xadd(keys.outbox(PART), {"event": "evt_done", "mch": MCH})
    taken = await events.read_new("killed-process", count=1)
    assert [(e.partition, e.merchant_id, e.event_id) for e in taken] == [(PART, MCH, "evt_held")]
    done = await events.read_new("stopped-process", count=1)
    await events.ack(done[0])

    # The killed process never acknowledged its entry: only the other consumer goes.
    assert await events.remove_consumers(0) == ["stopped-process"]
    assert await consumers(store.redis) == ["killed-process"]

    claimed = await events.claim_stale("survivor", 0, 10)
    assert [e.event_id for e in claimed] == ["evt_held"]
    assert await events.remove_consumers(0) == ["killed-process"]
    assert await consumers(store.redis) == ["survivor"]
    pending = await store.redis.xpending(keys.outbox(PART), GROUP)
    assert pending["pending"] == 1  # still held, by the survivor
    await events.ack(claimed[0])
    assert await events.remove_consumers(0, only="someone-else") == []
    assert await events.remove_consumers(0, only="survivor") == ["survivor"]


async def test_remove_consumers_copes_with_missing_streams(store: Store) -> None:
    assert await store.events.remove_consumers(0) == []


async def test_restarts_leave_no_consumers_behind(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    store: Store,
) -> None:
    merchant: tuple[str, str, str] | None = None
    seen: set[str] = set()
    for cycle in range(3):
        workdir = tmp_path / str(cycle)
        workdir.mkdir()
        router = await start_router(redis_url, simulator, workdir, serving, http, merchant=merchant)
        runner = serving.pop()
        merchant = (router.merchant_id, router.key_id, router.secret)
        # A consumer exists once it has taken an entry: give this process one.
        entry: dict[Any, Any] = {"event": f"evt_cycle{cycle}", "mch": router.merchant_id}
        await store.redis.xadd(keys.outbox(PART), entry)

        async def joined() -> list[str] | None:
            names = await consumers(store.redis)
            drained = await store.redis.xlen(keys.outbox(PART)) == 0
            return names if drained and names else None

        [name] = await eventually(joined)
        assert name not in seen
        seen.add(name)
        await runner.cleanup()
        assert await consumers(store.redis) == []


async def test_a_dead_process_consumer_is_removed_once_its_entries_are_taken_over(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    store: Store,
) -> None:
    created, issued = await store.merchants.create("Shop")
    mch = created.id
    await store.events.ensure_groups()
    await store.redis.xadd(keys.outbox(PART), {"event": "evt_orphan", "mch": mch})
    # A process that took the entry and was killed before acknowledging it.
    assert await store.events.read_new("killed-process", count=1)
    await start_router(
        redis_url,
        simulator,
        tmp_path,
        serving,
        http,
        merchant=(mch, issued.key.id, issued.secret),
        overrides={"webhook_claim_idle_s": 0.1},
    )

    async def removed() -> bool | None:
        pending = await store.redis.xpending(keys.outbox(PART), GROUP)
        names = await consumers(store.redis)
        return True if pending["pending"] == 0 and "killed-process" not in names else None

    await eventually(removed)
    assert await store.redis.xlen(keys.outbox(PART)) == 0
