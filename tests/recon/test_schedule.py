"""The daily run (`router.recon.schedule`): two routers on one Redis, exactly one reconciles a
day; a holder that dies mid-run leaves the day to the other once its lease expires; nothing
runs before PAYROUTER_RECON_AT or with it off. Time moves through the routers' clocks."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from router.app import RECORD
from router.recon.report import RunReport
from router.recon.schedule import DailyReconciliation, due_day
from tests.e2e.conftest import Router, Simulator, eventually, routing, start_router
from tests.recon.conftest import Harnesses

ACCOUNTS = {"wechat_main", "alipay_main", "unionpay_main"}


def daily(r: Router, lease_s: float = 5.0) -> DailyReconciliation:
    return DailyReconciliation(r.worker, r.app[RECORD], lease_s=lease_s)


async def test_one_router_of_two_reconciles_each_day_and_takes_over_from_a_dead_holder(
    redis_url: str,
    harnesses: Harnesses,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="payrouter.recon")
    found, folders = harnesses
    placeholder = Simulator(url="", sandbox=None)  # type: ignore[arg-type]
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    routers = [
        await start_router(
            redis_url,
            placeholder,
            tmp_path / name,
            serving,
            http,
            config_text=routing(found, folders),
            overrides={"recon_at": time(0, 0)},
        )
        for name in ("one", "two")
    ]
    first, second = daily(routers[0]), daily(routers[1])

    ran = await asyncio.gather(first.run_once(), second.run_once())
    done = [reports for reports in ran if reports is not None]
    assert len(done) == 1
    [reports] = done
    assert {r.account for r in reports} == ACCOUNTS
    assert all(r.status == "done" for r in reports)
    assert reports[0].day == first.due().isoformat()  # type: ignore[union-attr]
    # Every account's run is done, so the day was settled right after (nothing was paid).
    settled = [m for m in caplog.messages if m.startswith(f"settled {reports[0].day}:")]
    assert settled == [
        f"settled {reports[0].day}: 0 settlement(s) made, 0 already made, 0 event(s) sent, complete"
    ], caplog.messages
    # The day is done: neither looks at it again, even a fresh process.
    assert await first.run_once() is None and await second.run_once() is None
    assert await daily(routers[0]).run_once() is None

    for r in routers:
        r.clock.advance(86400)
    day = first.due()
    assert day is not None
    # A holder that took the next day and died: its lease runs out, then the other takes it.
    assert await first.leases.take(f"recon:{day.isoformat()}", "dead-holder", 300)
    assert await second.run_once() is None

    async def taken() -> list[RunReport] | None:
        return await second.run_once()

    reports = await eventually(taken)
    assert {r.account for r in reports} == ACCOUNTS and reports[0].day == day.isoformat()


def test_nothing_is_due_before_the_hour_or_when_off() -> None:
    at_0359 = datetime(2026, 11, 29, 19, 59, tzinfo=UTC)  # 03:59 on the 30th in China
    at_0400 = at_0359 + timedelta(minutes=1)
    assert due_day(at_0359, time(4, 0)) is None
    assert due_day(at_0400, time(4, 0)) == date(2026, 11, 29)
    assert due_day(at_0400, None) is None
    # Just after midnight in China it is already the next day there.
    assert due_day(datetime(2026, 11, 30, 16, 0, 1, tzinfo=UTC), time(0, 0)) == date(2026, 11, 30)
