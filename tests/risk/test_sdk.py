"""The SDK against a real router with a tight budget: it waits out a 429 as Retry-After says,
with the same Idempotency-Key, and raises a risk block as `RiskError`."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from payrouter_sdk import AsyncClient, RiskError
from tests.e2e.conftest import Simulator, start_router

pytestmark = pytest.mark.e2e
RISK = """\
version: 1
rate_limits:
  tiers:
    default:
      merchant:
        create: {per_second: 1, burst: 1}
rules:
  - {name: no-big, action: limit, max_amount: 50000, when: 'true'}
"""


async def test_the_sdk_retries_after_retry_after_and_names_a_block(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    path = tmp_path / "risk.yaml"
    path.write_text(RISK)
    router = await start_router(
        redis_url, simulator, tmp_path, serving, http, overrides={"risk_path": path}
    )
    async with AsyncClient(api_key=router.secret, base_url=router.url) as client:
        made = [
            await client.payments.create(
                amount=100, merchant_order_id=f"SDK-{i}", description="x", method="qr"
            )
            for i in range(2)
        ]
        assert [p.status for p in made] == ["pending", "pending"]
        assert made[1].risk is not None and made[1].risk.decision == "allow"
        with pytest.raises(RiskError) as caught:
            await client.payments.create(
                amount=60000, merchant_order_id="SDK-big", description="x", method="qr"
            )
    assert caught.value.code == "risk_declined" and "no-big" in caught.value.message
    assert caught.value.payment_id is not None
    async with http.get(router.url + "/metrics") as resp:
        text = await resp.text()
    # The second create and the blocked one each met an empty bucket once and were retried.
    assert 'payrouter_rate_limited_total{kind="create"} 2.0' in text
