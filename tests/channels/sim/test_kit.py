"""The shared simulator kit: notifications on a schedule, faults and their control routes."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from channels.sim.kit import Delivery, FaultBox, Faults, Notifier, fault_routes
from tests.channels.conftest import Receiver, serve


def two_xx(status: int, body: bytes) -> bool:
    return 200 <= status < 300


def json_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Attempt-Length": str(len(body))}


@pytest.fixture
async def notifier() -> AsyncIterator[Notifier]:
    async with Notifier(schedule=(15, 15, 30), success=two_xx, time_factor=0.001) as running:
        yield running


async def test_retries_until_success(notifier: Notifier, receiver: Receiver) -> None:
    receiver.replies = [500, 404]
    (delivery,) = notifier.submit("n1", receiver.url, b'{"a":1}', json_headers)
    assert await delivery.wait() == "delivered"
    assert [attempt.status for attempt in delivery.attempts] == [500, 404, 200]
    assert [attempt.error for attempt in delivery.attempts] == [
        "not acknowledged",
        "not acknowledged",
        None,
    ]
    assert all(item.body == b'{"a":1}' for item in receiver.received)
    assert receiver.received[0].headers["X-Attempt-Length"] == "7"
    # 15 and 15 channel seconds at a time factor of 0.001.
    gaps = [b.at - a.at for a, b in zip(delivery.attempts, delivery.attempts[1:], strict=False)]
    assert all(gap >= 0.015 for gap in gaps)


async def test_gives_up_after_the_schedule(notifier: Notifier, receiver: Receiver) -> None:
    receiver.replies = [500] * 10
    (delivery,) = notifier.submit("n2", receiver.url, b"{}", json_headers)
    assert await delivery.wait() == "failed"
    assert len(delivery.attempts) == 4


async def test_unreachable_receiver_is_recorded(notifier: Notifier) -> None:
    (delivery,) = notifier.submit("n3", "http://127.0.0.1:9/notify", b"{}", json_headers)
    assert await delivery.wait() == "failed"
    assert all(attempt.status is None for attempt in delivery.attempts)
    assert all(attempt.error for attempt in delivery.attempts)


async def test_channel_specific_success_test(receiver: Receiver) -> None:
    # Alipay wants the exact text "success"; the receiver's JSON is not it.
    async with Notifier(
        schedule=(1,), success=lambda status, body: body == b"success", time_factor=0.001
    ) as notifier:
        (delivery,) = notifier.submit("n4", receiver.url, b"a=1", json_headers)
        assert await delivery.wait() == "failed"
    assert [attempt.status for attempt in delivery.attempts] == [200, 200]


async def test_drops_and_duplicates(notifier: Notifier, receiver: Receiver) -> None:
    deliveries = notifier.submit(
        "n5", receiver.url, b"{}", json_headers, duplicates=2, drop_first=2, delay=0.001
    )
    assert [delivery.copy for delivery in deliveries] == [0, 1, 2]
    for delivery in deliveries:
        assert await delivery.wait() == "delivered"
        assert [attempt.status for attempt in delivery.attempts] == [None, None, 200]
    assert len(receiver.received) == 3
    await notifier.wait_idle()


async def test_close_cancels_pending_deliveries(receiver: Receiver) -> None:
    receiver.replies = [500]
    notifier = Notifier(schedule=(3600,), success=two_xx, time_factor=1.0)
    async with notifier:
        (delivery,) = notifier.submit("n6", receiver.url, b"{}", json_headers)
        await receiver.next()
    assert await delivery.wait() == "cancelled"
    assert delivery.as_dict()["state"] == "cancelled"
    with pytest.raises(RuntimeError, match="not running"):
        notifier.submit("n7", receiver.url, b"{}", json_headers)


def test_delivery_view() -> None:
    delivery = Delivery("n8", "http://example.invalid/", b"{}")
    assert delivery.as_dict() == {
        "notification_id": "n8",
        "url": "http://example.invalid/",
        "copy": 0,
        "state": "pending",
        "attempts": [],
    }


def test_faults_validation() -> None:
    assert Faults().model_dump() == {
        "latency_ms": 0,
        "slow_rate": 0.0,
        "slow_ms": 3_000,
        "error_rate": 0.0,
        "timeout_rate": 0.0,
        "hang_ms": 30_000,
        "outage": False,
        "decline_rate": 0.0,
        "auto_pay_after_ms": None,
        "notify_delay_ms": 0,
        "duplicate_notifications": 0,
        "drop_notifications": 0,
        "password_entry_ms": 10_000,
        "refund_delay_ms": 1_000,
        "refund_fail_rate": 0.0,
        "only": None,
        "misreport_amount": 0,
    }
    with pytest.raises(ValidationError, match="misreport_amount"):
        Faults.model_validate({"misreport_amount": 10**9})
    with pytest.raises(ValidationError, match="only"):
        Faults.model_validate({"only": ["dance"]})
    with pytest.raises(ValidationError, match="error_rate"):
        Faults.model_validate({"error_rate": 1.5})
    with pytest.raises(ValidationError, match="slow_rate"):
        Faults.model_validate({"slow_rate": -0.1})
    with pytest.raises(ValidationError, match="latency"):
        Faults.model_validate({"latency": 5})


async def test_fault_dice_are_seeded() -> None:
    def rolls(seed: int) -> list[bool]:
        box = FaultBox(random.Random(seed))
        return [box.chance(0.5) for _ in range(32)]

    assert rolls(3) == rolls(3)
    assert rolls(3) != rolls(4)
    box = FaultBox(random.Random(1))
    box.faults = Faults(outage=True, error_rate=1)
    assert await box.before_protocol_call() == "outage"
    box.faults = Faults(error_rate=1)
    assert await box.before_protocol_call() == "error"
    box.faults = Faults(timeout_rate=1, hang_ms=60_000)
    assert await box.before_protocol_call() == "timeout"
    box.stopping.set()
    await box.hang()  # returns at once once the application is stopping
    box.faults = Faults(misreport_amount=-500)
    assert (box.reported(1999), box.reported(100)) == (1499, 0)


async def test_fault_routes(http_session: aiohttp.ClientSession) -> None:
    key = web.AppKey("faults", FaultBox)
    app = web.Application()
    app[key] = FaultBox(random.Random(0))
    app.add_routes(fault_routes(key))
    served = await serve(app)
    try:
        url = f"{served.base_url}/sim/faults"
        async with http_session.put(url, data=b"{not json") as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"]
        async with http_session.put(url, json={"drop_notifications": -1}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "drop_notifications"
        async with http_session.put(url, json={"duplicate_notifications": 2}) as response:
            assert response.status == 200
        assert app[key].faults.duplicate_notifications == 2
        async with http_session.put(url, json={}) as response:
            assert (await response.json())["duplicate_notifications"] == 0
    finally:
        await served.runner.cleanup()
