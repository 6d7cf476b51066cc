"""`GET /admin/recon/runs` and `/admin/recon/runs/{id}` through the running router: the runs a
reconciliation wrote, filtered and paged; one run with its discrepancies and lines; the admin
token; a record that does not answer is a 503."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from router.app import RECORD
from router.recon.fix import reconcile
from router.record import Record
from router.record.connect import create_engine, engine_url
from tests.conftest import loopback_socket
from tests.e2e.conftest import ADMIN_TOKEN, Router
from tests.recon.conftest import Control, Harnesses, paid, recorded, today
from tests.record.test_ledger_api import TOKEN, client_for
from tests.router.test_cli import good_routing  # noqa: F401  (fixture)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def get(r: Router, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with r.http.get(r.url + path, headers=ADMIN if headers is None else headers) as resp:
        return resp.status, await resp.json()


async def test_runs_are_listed_newest_first_and_shown_with_discrepancies(
    rr: Router, harnesses: Harnesses, control: Control
) -> None:
    wechat = harnesses[0]["wechat"]
    payment = await paid(rr, wechat, 1_500)
    await recorded(rr, payment["id"])
    outside = await control(wechat, "outside_order", {"amount": 321})
    rr.clock.advance(1)
    await reconcile(rr.worker, rr.app[RECORD].engine, today(), ["alipay_main"])
    rr.clock.advance(1)
    await reconcile(rr.worker, rr.app[RECORD].engine, today(), ["wechat_main"])
    day = today().isoformat()

    status, listed = await get(rr, f"/admin/recon/runs?day={day}")
    assert status == 200, listed
    assert [run["account"] for run in listed["data"]] == ["wechat_main", "alipay_main"]
    assert listed["has_more"] is False
    first, *_ = listed["data"]
    assert (first["status"], first["lines"], first["matched"], first["needs_review"]) == (
        "done",
        2,
        1,
        1,
    )

    status, page = await get(rr, "/admin/recon/runs?limit=1")
    assert (status, [r["account"] for r in page["data"]], page["has_more"]) == (
        200,
        ["wechat_main"],
        True,
    )
    status, rest = await get(rr, f"/admin/recon/runs?limit=1&starting_after={first['id']}")
    assert [r["account"] for r in rest["data"]] == ["alipay_main"]
    status, filtered = await get(rr, "/admin/recon/runs?account=alipay_main&status=done")
    assert [r["account"] for r in filtered["data"]] == ["alipay_main"]

    status, run = await get(rr, f"/admin/recon/runs/{first['id']}?lines=needs_review")
    assert status == 200, run
    [found] = run["discrepancies"]
    assert (found["kind"], found["channel_trade_no"]) == (
        "missing_here",
        outside["channel_trade_no"],
    )
    shown = [line["channel_trade_no"] for line in run["statement_lines"]]
    assert shown == [outside["channel_trade_no"]]
    status, bare = await get(rr, f"/admin/recon/runs/{first['id']}")
    assert "statement_lines" not in bare and bare["lines"] == 2

    assert (await get(rr, "/admin/recon/runs/rcn_19990101_nope"))[0] == 404
    status, bad = await get(rr, "/admin/recon/runs?status=weird")
    assert (status, bad["error"]["param"]) == (400, "status")
    status, bad = await get(rr, "/admin/recon/runs?day=2026-02-30")
    assert (status, bad["error"]["param"]) == (400, "day")
    assert (await get(rr, "/admin/recon/runs", headers={}))[0] == 401


async def test_a_record_that_does_not_answer_is_503(good_routing: Path) -> None:  # noqa: F811
    with loopback_socket() as closed:
        url = engine_url(f"postgresql://u:pw@127.0.0.1:{closed.getsockname()[1]}/x", Path())
    gone = Record(create_engine(url), "PostgreSQL at nowhere", embedded=False)
    client: TestClient[Any, Any] = await client_for(good_routing, gone)
    try:
        for path in ("/admin/recon/runs", "/admin/recon/runs/rcn_20261129_wechat_main"):
            response = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status == 503, path
            assert response.headers["Retry-After"] == "1"
            assert (await response.json())["error"]["code"] == "record_unavailable"
    finally:
        await client.close()
