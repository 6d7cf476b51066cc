"""RateLimit fields on every answer under /v1: a request that fails authentication draws
from its client address's bucket, and aiohttp's own 404/405 carry the merchant's budget
(real router on loopback, real redis-server)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.conftest import Simulator
from tests.risk.test_api import TIGHT, limit_headers, metrics, start

pytestmark = pytest.mark.e2e


async def test_a_401_draws_from_its_address_and_then_is_429(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, TIGHT)
    bad = {"Authorization": "Bearer sk_test_notakeyatall0000"}
    answers = []
    for _ in range(4):
        async with http.get(router.url + "/v1/payments", headers=bad) as resp:
            answers.append((resp.status, (await resp.json())["error"]["type"], resp.headers))
    assert [(s, t) for s, t, _ in answers] == [
        (401, "authentication_error"),
        (401, "authentication_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
    ]
    assert [limit_headers(h)[:2] for _, _, h in answers] == [
        ("3", "2"),
        ("3", "1"),
        ("3", "0"),
        ("3", "0"),
    ]
    assert int(answers[3][2]["Retry-After"]) >= 1
    # The guesses spent none of the merchant's own budget.
    status, _, headers = await router.request("GET", "/v1/payments")
    assert (status, limit_headers(headers)[:2]) == (200, ("3", "2"))
    assert 'payrouter_rate_limited_total{kind="unauthenticated"} 1.0' in await metrics(router)


async def test_unknown_urls_and_methods_under_v1_carry_the_budget(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, TIGHT)
    status, body, headers = await router.request("GET", "/v1/no_such_thing")
    assert (status, body["error"]["code"]) == (404, "resource_missing")
    assert limit_headers(headers)[:2] == ("3", "2")
    status, body, headers = await router.request("DELETE", "/v1/payments")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    assert "POST" in headers["Allow"]
    assert limit_headers(headers)[:2] == ("3", "1")
    status, body, headers = await router.request("PUT", "/v1/no_such_thing")
    assert (status, limit_headers(headers)[:2]) == (404, ("3", "0"))
    status, body, headers = await router.request("GET", "/v1/no_such_thing")
    assert (status, body["error"]["type"]) == (429, "rate_limit_error")
