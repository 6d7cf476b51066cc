"""Rate limits and risk rules through a real router on loopback (WeChat Pay simulator, real
redis-server): headers, 429, 402, the decision on the payment, metrics, lists, reload."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.api.middleware import RUNTIME
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    Router,
    Simulator,
    eventually,
    start_router,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "config" / "risk.yaml").read_text()
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TIGHT = """\
version: 1
rate_limits:
  tiers:
    default:
      merchant:
        create: {per_second: 0.01, burst: 2}
        read: {per_second: 0.01, burst: 3}
"""


def openid(i: int) -> str:
    """A WeChat Pay openid shape (28 characters), one per card the attacker tries."""
    return f"oCard{i:023d}"


async def start(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    risk: str,
    **extra: Any,
) -> tuple[Router, Path]:
    path = tmp_path / "risk.yaml"
    path.write_text(risk)
    router = await start_router(
        redis_url, simulator, tmp_path, serving, http, overrides={"risk_path": path}, **extra
    )
    return router, path


async def admin(router: Router, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with router.http.request(method, router.url + path, json=body, headers=ADMIN) as resp:
        return resp.status, await resp.json()


async def metrics(router: Router) -> str:
    async with router.http.get(router.url + "/metrics") as resp:
        return await resp.text()


def limit_headers(headers: Any) -> tuple[str, str, str]:
    return headers["RateLimit-Limit"], headers["RateLimit-Remaining"], headers["RateLimit-Reset"]


async def test_every_answer_carries_the_budget_and_a_spent_one_is_429(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, TIGHT)
    answers = [await router.request("GET", "/v1/payments/pay_missing") for _ in range(4)]
    assert [status for status, _, _ in answers] == [404, 404, 404, 429]
    assert [limit_headers(h)[:2] for _, _, h in answers] == [
        ("3", "2"),
        ("3", "1"),
        ("3", "0"),
        ("3", "0"),
    ]
    status, body, headers = answers[3]
    assert body["error"]["type"] == "rate_limit_error"
    assert int(headers["Retry-After"]) >= 1
    assert int(headers["RateLimit-Reset"]) >= int(headers["Retry-After"])

    # Creates have their own budget: a bad one spends a token too, and says so.
    status, body, headers = await router.request("POST", "/v1/payments", json={"amount": "x"})
    assert (status, limit_headers(headers)[:2]) == (400, ("2", "1"))
    status, body = await router.create()
    assert status == 201, body
    assert body["risk"] == {"decision": "allow", "rules": []}
    spent = {"amount": 100, "method": "qr", "description": "x", "merchant_order_id": "A-spent"}
    status, body, headers = await router.request("POST", "/v1/payments", json=spent)
    assert (status, body["error"]["type"], headers["RateLimit-Remaining"]) == (
        429,
        "rate_limit_error",
        "0",
    )
    # Nothing was created by the refused request.
    listed = await router.request("GET", "/v1/payments?merchant_order_id=A-spent")
    assert listed[0] == 429  # reads are spent too; the budget is the merchant's, per kind
    text = await metrics(router)
    assert 'payrouter_rate_limited_total{kind="read"} 2.0' in text
    assert 'payrouter_rate_limited_total{kind="create"} 1.0' in text


async def test_a_card_testing_attack_is_blocked_and_a_normal_shop_is_not(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    victim, _ = await start(redis_url, simulator, tmp_path, serving, http, SHIPPED)
    # Another shop on the same router, whose buyers pay from the same café's address.
    made, issued = await victim.app[RUNTIME].store.merchants.create("Other shop")
    shop = replace(victim, secret=issued.secret, key_id=issued.key.id, merchant_id=made.id)

    attack = []
    for i in range(12):
        status, body = await victim.create(
            amount=100, method="jsapi", payer_id=openid(i), client_ip="198.51.100.7"
        )
        attack.append((status, body))
    statuses = [status for status, _ in attack]
    assert statuses == [201] * 5 + [402] * 7, statuses
    status, blocked = attack[5]
    error = blocked["error"]
    assert (error["type"], error["code"]) == ("risk_error", "risk_declined")
    assert "card-testing-payers-per-ip" in error["message"]
    payment = await victim.payment(error["payment_id"])
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "risk_declined"
    assert payment["risk"]["decision"] == "block"
    assert payment["risk"]["rules"][0] == "card-testing-payers-per-ip"
    assert payment["routing"]["attempts"] == []  # never sent to a channel

    # Ordinary buyers, each from their own address, and the other shop's buyers from the
    # attacker's address: unaffected (counters are per merchant).
    for i in range(5):
        status, body = await victim.create(
            amount=2500, method="jsapi", payer_id=f"oShop{i:023d}", client_ip=f"203.0.113.{i}"
        )
        assert (status, body["risk"]["decision"]) == (201, "allow"), body
        status, body = await shop.create(
            amount=2500, method="jsapi", payer_id=f"oCafe{i:023d}", client_ip="198.51.100.7"
        )
        assert (status, body["risk"]["decision"]) == (201, "allow"), body

    text = await metrics(victim)
    assert 'payrouter_risk_decisions_total{decision="block"} 7.0' in text
    assert (
        'payrouter_risk_rule_hits_total{action="block",rule="card-testing-payers-per-ip"} 7.0'
        in text
    )

    status, explained = await admin(victim, "GET", f"/admin/risk/explain/{payment['id']}")
    assert status == 200, explained
    assert explained["decided"]["decision"] == "block"
    rule = next(r for r in explained["now"]["rules"] if r["name"] == "card-testing-payers-per-ip")
    assert rule["fires"] and rule["features"]["ip_payers_1h"] == 12


async def test_operators_lists_block_payers_and_networks(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, SHIPPED)
    status, body = await admin(
        router, "PUT", "/admin/risk/lists/blocked", {"entries": ["198.51.100.0/24", openid(99)]}
    )
    assert status == 200, body
    status, body = await router.create(client_ip="198.51.100.200")
    assert (status, body["error"]["code"]) == (402, "risk_declined")
    assert "blocklist" in body["error"]["message"]
    status, body = await router.create(method="jsapi", payer_id=openid(99))
    assert status == 402
    status, body = await router.create(client_ip="192.0.2.1")
    assert status == 201
    status, body = await admin(router, "PUT", "/admin/risk/lists/blocked", {"entries": [7]})
    assert (status, body["error"]["param"]) == (400, "entries.0")
    await admin(router, "DELETE", "/admin/risk/lists/blocked")
    status, body = await router.create(client_ip="198.51.100.200")
    assert status == 201


async def test_a_checkout_is_screened_like_any_create(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    """A hosted checkout is written before any wallet is known; the rules judge it then, and a
    block is a 402 with the payment kept `failed`, as for every other method."""
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, SHIPPED)
    await admin(router, "PUT", "/admin/risk/lists/blocked", {"entries": ["198.51.100.0/24"]})
    status, body = await router.create(method="checkout", client_ip="198.51.100.7")
    assert (status, body["error"]["code"]) == (402, "risk_declined"), body
    blocked = await router.payment(body["error"]["payment_id"])
    assert (blocked["status"], blocked["risk"]["decision"]) == ("failed", "block")
    status, body = await router.create(method="checkout", client_ip="192.0.2.7")
    assert status == 201, body
    assert (body["status"], body["risk"]["decision"]) == ("pending", "allow")


async def test_the_risk_file_is_reloaded_and_a_broken_one_refused(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router, path = await start(
        redis_url, simulator, tmp_path, serving, http, SHIPPED, watch_config=True
    )
    status, body = await router.create(amount=60000)
    assert status == 201
    path.write_text(
        "version: 1\nrules:\n  - {name: no-big, action: limit, max_amount: 50000, when: 'true'}\n"
    )

    async def blocked() -> dict[str, Any] | None:
        status, body = await router.create(amount=60000)
        return body if status == 402 else None

    body = await eventually(blocked)
    assert "no-big" in body["error"]["message"]
    status, shown = await admin(router, "GET", "/admin/risk")
    version = shown["version"]
    path.write_text("version: 1\nrules:\n  - {name: x, action: block, when: 'amount >'}\n")

    async def refused() -> dict[str, Any] | None:
        _, shown = await admin(router, "GET", "/admin/risk")
        return shown if shown["last_error"] else None

    shown = await eventually(refused)
    assert shown["version"] == version
    assert shown["last_error"][0].startswith(f"{path}:3: rules.0.when:")
    status, body = await router.create(amount=60000)
    assert status == 402  # the last good file stays in force


async def test_a_flagged_payment_is_sent_and_marked(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    rules = (
        "version: 1\nrules:\n"
        "  - {name: big, action: flag, when: 'amount >= 5000'}\n"
        "  - {name: vip, action: flag, when: 'has(metadata.tier) && metadata.tier == \"vip\"'}\n"
    )
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, rules)
    status, body = await router.create(amount=5000, metadata={"tier": "vip"})
    assert status == 201, body
    assert (body["status"], body["risk"]) == (
        "pending",
        {"decision": "flag", "rules": ["big", "vip"]},
    )
    assert body["routing"]["attempts"][0]["outcome"] == "created"
    stored = await router.payment(body["id"])
    assert stored["risk"] == body["risk"]
    text = await metrics(router)
    assert 'payrouter_risk_decisions_total{decision="flag"} 1.0' in text
    assert 'payrouter_risk_rule_hits_total{action="flag",rule="vip"} 1.0' in text
