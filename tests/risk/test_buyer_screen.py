"""Every payment passes the screen, not only the merchant API's creates: a payment link's
scan is rate-limited per link and address and judged by the rules, and a checkout is judged
again once the buyer's wallet is known (real router, WeChat Pay simulator and its web
authorisation, real redis-server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.checkout.conftest import UA
from tests.e2e.conftest import Router, Simulator
from tests.risk.test_api import admin, limit_headers, metrics, start

pytestmark = pytest.mark.e2e
BUYER_RULES = """\
version: 1
rate_limits:
  tiers:
    default: {}
  scan: {per_second: 0.01, burst: 2}
rules:
  - name: wechat-ceiling
    when: wallet == "wechat" && amount > 100000
    action: block
  - name: wechat-watch
    when: wallet == "wechat" && amount == 4242
    action: flag
  - name: blocklist
    when: '"blocked" in lists'
    action: block
"""


async def link(router: Router, amount: int) -> str:
    body = {"amount": amount, "description": "Tea"}
    status, made, _ = await router.request("POST", "/v1/payment_links", json=body)
    assert status == 201, made
    return str(made["id"])


async def scan(router: Router, link_id: str) -> tuple[int, Any]:
    async with router.http.get(f"{router.url}/l/{link_id}", allow_redirects=False) as resp:
        await resp.read()
        return resp.status, resp.headers


async def newest(router: Router) -> dict[str, Any]:
    status, listed, _ = await router.request("GET", "/v1/payments?limit=1")
    assert status == 200, listed
    return dict(listed["data"][0])


async def test_link_scans_are_limited_per_link_and_address_and_screened(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, BUYER_RULES)
    first, second = await link(router, 100), await link(router, 200)
    answers = [await scan(router, first) for _ in range(3)]
    assert [status for status, _ in answers] == [303, 303, 429]
    assert limit_headers(answers[2][1])[:2] == ("2", "0")
    assert int(answers[2][1]["Retry-After"]) >= 1
    # Another link is another bucket; the scans made checkouts judged by the rules.
    assert (await scan(router, second))[0] == 303
    made = await newest(router)
    assert (made["amount"], made["risk"]) == (200, {"decision": "allow", "rules": []})

    await admin(router, "PUT", "/admin/risk/lists/blocked", {"entries": ["127.0.0.0/8"]})
    assert (await scan(router, second))[0] == 402
    blocked = await newest(router)
    assert (blocked["status"], blocked["failure"]["code"]) == ("failed", "risk_declined")
    assert blocked["risk"] == {"decision": "block", "rules": ["blocklist"]}
    assert 'payrouter_rate_limited_total{kind="create"} 1.0' in await metrics(router)


async def open_in_wechat(router: Router, created: dict[str, Any]) -> str:
    """The buyer opens the checkout in WeChat: through the simulator's authorisation and
    back, where the router attaches the payment to the wallet."""
    agent = {"User-Agent": UA["wechat"]}
    async with router.http.get(created["action"]["url"], headers=agent) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_a_checkout_is_judged_again_with_its_wallet(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, BUYER_RULES)
    status, created = await router.create(method="checkout", amount=200000)
    assert status == 201, created
    assert created["risk"] == {"decision": "allow", "rules": []}  # no wallet known yet
    page = await open_in_wechat(router, created)
    assert "This payment was declined" in page or "该笔支付已被拒绝" in page
    after = await router.payment(created["id"])
    assert (after["status"], after["failure"]["code"]) == ("failed", "risk_declined")
    assert after["risk"] == {"decision": "block", "rules": ["wechat-ceiling"]}
    assert after["channel_trade_no"] is None  # never sent to the channel

    status, created = await router.create(method="checkout", amount=4242)
    assert status == 201, created
    await open_in_wechat(router, created)
    after = await router.payment(created["id"])
    assert (after["status"], after["wallet"]) == ("pending", "wechat")
    assert after["risk"] == {"decision": "flag", "rules": ["wechat-watch"]}
    text = await metrics(router)
    assert 'payrouter_risk_rule_hits_total{action="block",rule="wechat-ceiling"} 1.0' in text
