"""Fixtures for the store tests: each runs on a real redis-server and on the embedded store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from router.clock import FrozenClock, rfc3339
from router.models import Payment, Routing
from router.store import Store, open_store
from router.store.payments import PaymentStore, StoredPayment

MCH = "mch_teststore0001"


URL_FIXTURES = {
    "redis": "redis_url",
    "cluster": "redis_cluster_url",
    "sentinel": "redis_sentinel_url",
}


@pytest.fixture(
    params=[
        "redis",
        "embedded",
        pytest.param("cluster", marks=pytest.mark.cluster),
        pytest.param("sentinel", marks=pytest.mark.cluster),
    ]
)
async def store(request: pytest.FixtureRequest, clock: FrozenClock) -> AsyncIterator[Store]:
    """The store on one server, the embedded store, a Redis Cluster and a Sentinel primary."""
    fixture = URL_FIXTURES.get(request.param)
    url = None if fixture is None else request.getfixturevalue(fixture)
    opened = await open_store(url, clock)
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def payment(clock: FrozenClock, moid: str = "A1", created_ms: int | None = None) -> StoredPayment:
    return StoredPayment(
        payment=Payment(
            id=PaymentStore.new_id(MCH, moid),
            merchant_order_id=moid,
            amount=1999,
            currency="CNY",
            method="qr",
            wallet="wechat",
            channel="wechat_main",
            status="processing",
            description="test",
            routing=Routing(rule="default"),
            created_at=rfc3339(clock.utcnow()),
            livemode=False,
        ),
        merchant_id=MCH,
        created_ms=created_ms if created_ms is not None else clock.now_ms(),
    )
