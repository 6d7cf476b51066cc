"""Metrics hygiene on a real scrape: promtool's lint, and every label's values from a bounded
source (`router.metrics.LABEL_SOURCES`), whatever clients send."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from channels.registry import REGISTRY
from channels.sim.kit import Operation
from router.api.middleware import RUNTIME
from router.metrics import HTTP_METHODS, LABEL_SOURCES
from router.models import PaymentStatus, RefundStatusName
from tests.e2e.conftest import Router, Simulator, sim_json, start_router
from tests.e2e.test_store_down import RedisProcess
from tests.ops.conftest import scrape
from tests.ops.promtool import promtool

CODE_LITERAL = re.compile(r"^[a-z][a-z_]{0,39}$")
"""What a label value that comes from a literal in the code looks like."""


def series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def traffic(router: Router, simulator: Simulator) -> None:
    """Creates that succeed, a channel outage that fails some, and junk requests."""
    for _ in range(3):
        status, _ = await router.create()
        assert status == 201
    await sim_json(router.http, simulator, "PUT", "/sim/faults", {"outage": True})
    status, _ = await router.create()
    assert status >= 500
    await sim_json(router.http, simulator, "PUT", "/sim/faults", {})
    status, _ = await router.create(amount=-1)
    assert status == 400


async def test_a_real_scrape_passes_promtool_check_metrics(
    router: Router, simulator: Simulator
) -> None:
    await traffic(router, simulator)
    text = await scrape(router)
    done = promtool("check", "metrics", stdin=text.encode())
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout.decode()
    assert "payrouter_channel_calls_total" in text and "process_cpu_seconds_total" in text


async def test_every_label_value_comes_from_a_bounded_source(
    router: Router, simulator: Simulator
) -> None:
    await traffic(router, simulator)
    rt = router.app[RUNTIME]
    routes = {r.canonical for r in router.app.router.resources()} | {"unmatched"}
    statuses = set(typing.get_args(PaymentStatus)) | set(typing.get_args(RefundStatusName))
    allowed: dict[str, Callable[[str], object]] = {
        "account": set(rt.accounts).__contains__,
        "from_account": set(rt.accounts).__contains__,
        "wallet": set(REGISTRY).__contains__,
        "rule": lambda v: v == "default" or CODE_LITERAL.match(v) is not None,
        "operation": set(typing.get_args(Operation)).__contains__,
        "method": (HTTP_METHODS | {"OTHER"}).__contains__,
        "route": routes.__contains__,
        "status": lambda v: v in statuses or re.fullmatch(r"[1-5]\d\d", v) is not None,
        "version": lambda v: v == "off" or re.fullmatch(r"[0-9a-f]{8,64}", v) is not None,
    }
    seen = set()
    for name, labels in series(await scrape(router)):
        if name.startswith(("python_", "process_")):
            continue  # prometheus_client's process and platform collectors: fixed per process
        for label, value in labels:
            if label == "le":
                continue
            assert label in LABEL_SOURCES, f"{name}: label {label!r} has no documented source"
            check = allowed.get(label, CODE_LITERAL.match)
            assert check(value), f"{name}{{{label}={value!r}}} is not from {LABEL_SOURCES[label]}"
            seen.add(label)
    assert {"account", "method", "route", "status", "operation", "outcome", "wallet"} <= seen


async def test_client_input_adds_no_series(router: Router, simulator: Simulator) -> None:
    await traffic(router, simulator)
    # One of each kind first, so the later ones can only repeat these series.
    for method in ("GET", "PROPFIND"):
        async with router.http.request(method, f"{router.url}/nowhere/first") as resp:
            assert resp.status == 404
    await scrape(router)  # the scrape's own request is counted after it is answered
    before = series(await scrape(router))
    assert any(("method", "OTHER") in labels for _, labels in before)
    for i in range(20):
        for method in ("GET", "PROPFIND", "MKCOL", "LOCK", "TRACE"):
            async with router.http.request(
                method, f"{router.url}/nowhere/{i}?q={i}", headers={"X-Request-Id": f"req{i:08d}"}
            ) as resp:
                assert resp.status == 404
    after = series(await scrape(router))
    assert after == before


async def test_the_scrape_answers_while_the_store_is_down(
    tmp_path: Path,
    simulator: Simulator,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    redis = RedisProcess(workdir)
    await redis.start()
    try:
        router = await start_router(redis.url, simulator, tmp_path, serving, http)
        assert "payrouter_store_up 1.0" in await scrape(router)
        await redis.stop()
        text = await scrape(router)
        assert "payrouter_store_up 0.0" in text
        assert "payrouter_http_requests_total" in text  # the rest is still there
        await redis.start()
        assert "payrouter_store_up 1.0" in await scrape(router)
    finally:
        await redis.stop()


async def test_counters_the_alerts_read_are_exported_at_zero_from_the_start(
    router: Router,
) -> None:
    # `increase` and `rate` need two samples of a series: a counter that first appears at 1
    # would hide its first count from deploy/prometheus/alerts.yml.
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await scrape(router))
        for sample in family.samples
    }
    expected = [
        ("payrouter_config_reloads_total", (("outcome", "refused"),)),
        ("payrouter_risk_config_reloads_total", (("outcome", "refused"),)),
        ("payrouter_record_drain_errors_total", ()),
        ("payrouter_record_unchecked_orders_total", ()),
        *(("payrouter_risk_decisions_total", (("decision", d),)) for d in ("allow", "block")),
        *(("payrouter_rate_limited_total", (("kind", k),)) for k in ("create", "read", "refund")),
    ]
    for key in expected:
        assert found.get(key) == 0, key
