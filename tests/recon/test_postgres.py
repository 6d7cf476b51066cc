"""Reconciliation on PostgreSQL (lines written with COPY, postings under advisory locks): a
day with a match, a coupon, a refund and a line the record lacks, run twice."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from router.app import RECORD
from router.recon.fix import reconcile
from router.record.schema import ledger_postings, recon_lines
from tests.e2e.conftest import Simulator, routing, start_router
from tests.recon.conftest import Control, Harnesses, paid, recorded, refunded, today


@pytest.mark.postgres
async def test_a_day_reconciles_the_same_twice_on_postgresql(
    redis_url: str,
    harnesses: Harnesses,
    control: Control,
    postgres_migrated_url: str,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    found, folders = harnesses
    h = found["alipay"]
    await h.set_faults({"refund_delay_ms": 0})
    placeholder = Simulator(url="", sandbox=None)  # type: ignore[arg-type]
    r = await start_router(
        redis_url,
        placeholder,
        tmp_path,
        serving,
        http,
        config_text=routing(found, folders),
        overrides={"database_url": postgres_migrated_url},
    )
    first = await paid(r, h, 3_000)
    second = await paid(r, h, 8_000)
    await control(h, "coupon", {"order_no": second["id"], "amount": 500})
    back = await refunded(r, first["id"], 1_000)
    for ident in (first["id"], second["id"], back["id"]):
        await recorded(r, ident)
    outside = await control(h, "outside_order", {"amount": 450})
    engine = r.app[RECORD].engine

    async def counts() -> tuple[int, int]:
        async with engine.connect() as conn:
            lines = await conn.execute(select(func.count()).select_from(recon_lines))
            posted = await conn.execute(select(func.count()).select_from(ledger_postings))
            return int(lines.scalar_one()), int(posted.scalar_one())

    [report] = await reconcile(r.worker, engine, today(), ["alipay_main"])
    assert (report.status, report.lines, report.matched, report.needs_review) == ("done", 4, 3, 1)
    [missing] = report.discrepancies
    assert (missing.kind, missing.channel_trade_no) == ("missing_here", outside["channel_trade_no"])
    lines, posted = await counts()
    assert lines == 4

    [again] = await reconcile(r.worker, engine, today(), ["alipay_main"])
    assert again.as_json() == report.as_json() and again.attempts == 2
    assert await counts() == (lines, posted)

    await h.set_faults({"outage": True})
    [failed] = await reconcile(r.worker, engine, today(), ["alipay_main"])
    assert failed.status == "failed" and failed.error
    assert await counts() == (lines, posted)
