"""The shipped monitoring against a real Prometheus: Debian's `prometheus` runs
deploy/prometheus.yml (1 s intervals, the two routers as targets) with the shipped rules,
scrapes two real routers sharing a Redis and a WeChat Pay simulator, and sees the breaker
alerts fire during a simulated outage and resolve after it; every dashboard query is run
against it while the outage lasts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.conftest import loopback_socket
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    Router,
    Simulator,
    account_yaml,
    eventually,
    sim_json,
    start_router,
)
from tests.ops.dashboard import COMMITTED, queries
from tests.ops.promtool import ALERTS, DEPLOY

CORE_PANELS = {
    "Create availability",
    "Requests by status",
    "Payments routed by wallet",
    "Create latency",
    "Payment status changes",
    "Channel success rate",
    "Channel calls by outcome",
    "Channel latency",
    "Breaker state",
    "Health score",
    "Failovers",
    "Webhook backlog",
    "Routers up",
    "Store reachable",
    "CPU",
    "Memory",
    "Config reloads",
    "Config version",
    "Record lag",
    "Drained to the record",
    "Record errors",
    "Retired from Redis",
    "Risk decisions",
    "429s by kind",
    "Risk file reloads",
    "Risk file version",
}
"""Panels that must show data during an outage with some traffic (the record's and risk's
counters are exported at 0 from the start); the others (webhooks, notifications, conflicts,
the re-query worker, risk rules hit or failing) need events this test does not cause, and
only have to be valid queries."""

FAST_BREAKER = """\
breaker:
  consecutive_failures: 3
  min_calls: 3
  open_s: 1
  max_open_s: 2
  half_open_probes: 1
  close_after: 1
"""


def fast_rules(text: str) -> str:
    """The shipped rules with every `for:` shortened to 1 s: the one difference between
    what this test loads and deploy/prometheus/alerts.yml (docs/operations.md)."""
    return re.sub(r"(?m)^(\s+for: )\S+$", r"\g<1>1s", text)


def prometheus_config(targets: list[str], rules: Path) -> str:
    """deploy/prometheus.yml with 1 s intervals, `targets` and the rules at `rules`."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"] = {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(rules)]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": targets}]
    return yaml.safe_dump(config)


class Prometheus:
    """A Prometheus server's HTTP API."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url, self.http = url, http

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(self.url + path, params=params) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["status"] == "success", body
            return body["data"]

    async def alerts(self, name: str) -> list[dict[str, Any]]:
        found = await self.get("/api/v1/alerts")
        return [a for a in found["alerts"] if a["labels"]["alertname"] == name]


def write_config(folder: Path, targets: list[str]) -> Path:
    """The test's Prometheus configuration and rules, written under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rules = folder / "alerts.yml"
    rules.write_text(fast_rules(ALERTS.read_text()))
    config = folder / "prometheus.yml"
    config.write_text(prometheus_config(targets, rules))
    return config


@contextlib.asynccontextmanager
async def run_prometheus(
    folder: Path, targets: list[str], http: aiohttp.ClientSession
) -> AsyncIterator[Prometheus]:
    exe = shutil.which("prometheus")
    assert exe, "prometheus is missing: run scripts/setup (Debian's prometheus package)"
    config = write_config(folder, targets)
    with loopback_socket() as probe:
        port = probe.getsockname()[1]
    with (folder / "prometheus.log").open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            exe,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=sink,
            stderr=sink,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", http)
    try:

        async def ready() -> bool | None:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(server.url + "/-/ready") as resp:
                    return True if resp.status == 200 else None
            return None

        await eventually(ready, timeout=30)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=20)


async def breaker(router: Router, account: str) -> str:
    async with router.http.get(
        router.url + "/admin/channels", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as resp:
        rows = (await resp.json())["data"]
    state: str = next(row["breaker"] for row in rows if row["account"] == account)
    return state


@pytest.mark.e2e
@pytest.mark.timeout(150)
async def test_outage_pages_in_prometheus_and_every_panel_query_runs(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    config = "version: 1\naccounts:\n" + account_yaml("wechat_main", simulator) + FAST_BREAKER
    first = await start_router(redis_url, simulator, tmp_path, serving, http, config_text=config)
    merchant = (first.merchant_id, first.key_id, first.secret)
    second = await start_router(
        redis_url, simulator, tmp_path, serving, http, config_text=config, merchant=merchant
    )
    routers = [first, second]
    for router in routers * 3:
        assert (await router.create())[0] == 201
    targets = [r.url.removeprefix("http://") for r in routers]
    async with run_prometheus(tmp_path / "prometheus", targets, http) as prometheus:

        async def scraped() -> bool | None:
            found = await prometheus.get("/api/v1/targets")
            healthy = [t for t in found["activeTargets"] if t["health"] == "up"]
            return True if len(healthy) == 2 else None

        await eventually(scraped, timeout=30)

        # The outage: creates fail until the breaker opens; then it stays open (half-open
        # between failed probes) with no traffic at all.
        await sim_json(http, simulator, "PUT", "/sim/faults", {"outage": True})

        async def opened() -> bool | None:
            for router in routers:
                status, _ = await router.create()
                assert status == 503
            return True if await breaker(first, "wechat_main") == "open" else None

        await eventually(opened, timeout=30)

        async def firing(name: str) -> dict[str, Any] | None:
            alerts = [a for a in await prometheus.alerts(name) if a["state"] == "firing"]
            return alerts[0] if alerts else None

        alert = await eventually(lambda: firing("PayrouterBreakerOpen"), timeout=45)
        assert alert["labels"] | {"account": "wechat_main", "severity": "page"} == alert["labels"]
        assert alert["annotations"]["runbook_url"] == "docs/operations.md#payrouterbreakeropen"
        wallet = await eventually(lambda: firing("PayrouterWalletDown"), timeout=45)
        assert wallet["labels"]["wallet"] == "wechat"

        dashboard = json.loads(COMMITTED.read_text())
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            found = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
            assert found, variable["definition"]
            values = await prometheus.get(
                f"/api/v1/label/{found[2]}/values", **{"match[]": found[1]}
            )
            expected = set(targets) if found[2] == "instance" else {"wechat_main"}
            assert set(values) == expected, (variable["name"], values)

        empty = []
        for title, exprs in queries(dashboard).items():
            for expr in exprs:
                result = await prometheus.get("/api/v1/query", query=expr)
                if not result["result"]:
                    empty.append(title)
        assert not CORE_PANELS & set(empty), f"core panels without data: {CORE_PANELS & set(empty)}"

        # Recovery: the next create is the half-open probe; its success closes the breaker.
        await sim_json(http, simulator, "PUT", "/sim/faults", {})

        async def closed() -> bool | None:
            await first.create()
            return True if await breaker(first, "wechat_main") == "closed" else None

        await eventually(closed, timeout=30)

        async def resolved() -> bool | None:
            left = await prometheus.alerts("PayrouterBreakerOpen")
            left += await prometheus.alerts("PayrouterWalletDown")
            return True if not left else None

        await eventually(resolved, timeout=45)
