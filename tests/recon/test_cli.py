"""`payrouter recon run` as an operator runs it: a real process against the test's Redis, the
routing file and the router's embedded record, while that router keeps serving."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.e2e.conftest import Router
from tests.recon.conftest import Control, Harnesses, paid, recorded, today
from tests.router.test_cli import one_line_exit_2, payrouter


async def recon(redis_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PAYROUTER_REDIS_URL": redis_url,
        "PAYROUTER_ROUTING": str(tmp_path / "routing.yaml"),
        "PAYROUTER_SANDBOX_DIR": str(tmp_path / "sandbox"),
    }
    return await asyncio.to_thread(payrouter, "recon", "run", *args, env=env)


async def test_recon_run_reports_as_json_and_exits_by_what_needs_review(
    rr: Router, harnesses: Harnesses, control: Control, redis_url: str, tmp_path: Path
) -> None:
    wechat, alipay = harnesses[0]["wechat"], harnesses[0]["alipay"]
    mine = await paid(rr, wechat, 2_500)
    theirs = await paid(rr, alipay, 1_200)
    for ident in (mine["id"], theirs["id"]):
        await recorded(rr, ident)
    outside = await control(alipay, "outside_order", {"amount": 999})
    day = today().isoformat()

    clean = await recon(redis_url, tmp_path, "--date", day, "--account", "wechat_main", "--json")
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert set(report) == {"date", "accounts"} and report["date"] == day
    [account] = report["accounts"]
    assert set(account) == {"account", "lines", "matched", "discrepancies"}
    assert (account["account"], account["lines"], account["matched"]) == ("wechat_main", 1, 1)
    assert account["discrepancies"] == []

    both = await recon(redis_url, tmp_path, "--date", day, "--json")
    assert both.returncode == 1, both.stderr
    accounts = {a["account"]: a for a in json.loads(both.stdout)["accounts"]}
    assert set(accounts) == {"wechat_main", "alipay_main", "unionpay_main"}
    assert accounts["unionpay_main"]["lines"] == 0
    assert accounts["alipay_main"]["discrepancies"] == [
        {
            "kind": "missing_here",
            "payment_id": None,
            "refund_id": None,
            "channel_trade_no": outside["channel_trade_no"],
            "ours": None,
            "theirs": accounts["alipay_main"]["discrepancies"][0]["theirs"],
            "resolution": "needs_review",
        }
    ]
    assert accounts["alipay_main"]["discrepancies"][0]["theirs"]["amount"] == 999

    table = await recon(redis_url, tmp_path, "--date", day)
    assert table.returncode == 1
    assert "alipay_main" in table.stdout and "missing_here" in table.stdout

    unknown = await recon(redis_url, tmp_path, "--account", "nope")
    one_line_exit_2(unknown, "--account nope")
    bad_date = await recon(redis_url, tmp_path, "--date", "2026-13-01")
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
