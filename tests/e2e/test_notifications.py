"""Channel callbacks that must change nothing: forged, tampered, replayed, mismatched."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.wechat.crypto import sign_answer
from channels.wechat.notification import build_notification
from router.api.middleware import RUNTIME
from tests.e2e.conftest import Router, Simulator

pytestmark = pytest.mark.every_topology


def transaction(sim: Simulator, pay_id: str, total: int, state: str = "SUCCESS") -> dict[str, Any]:
    creds = sim.sandbox.credentials
    return {
        "mchid": creds.mchid,
        "appid": creds.appid,
        "out_trade_no": pay_id,
        "transaction_id": "4200000000" + secrets.token_hex(6),
        "trade_type": "NATIVE",
        "trade_state": state,
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-11-22T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {
            "total": total,
            "payer_total": total,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }


def notification(
    sim: Simulator,
    resource: dict[str, Any],
    *,
    key: rsa.RSAPrivateKey | None = None,
    apiv3_key: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A notification as the channel would send it, signed with `key` (default: the real one)."""
    creds = sim.sandbox.credentials
    body = build_notification(
        notification_id=secrets.token_hex(8),
        create_time=datetime.now(UTC),
        resource=resource,
        apiv3_key=apiv3_key or creds.apiv3_key.get_secret_value(),
        nonce=secrets.token_hex(6),
    )
    headers = sign_answer(
        key or sim.sandbox.platform_private_key,
        creds.platform_public_key_id,
        body,
        timestamp=int(time.time()),
        nonce=secrets.token_hex(8),
    )
    return body, headers | {"Content-Type": "application/json"}


async def post(router: Router, body: bytes, headers: dict[str, str]) -> int:
    async with router.http.post(
        f"{router.url}/v1/notify/wechat_main", data=body, headers=headers
    ) as resp:
        return resp.status


def refused(router: Router, reason: str) -> float:
    metric = router.app[RUNTIME].metrics.notifications.labels("wechat_main", reason)
    return float(metric._value.get())


async def test_genuine_notification_is_accepted(router: Router, simulator: Simulator) -> None:
    _, created = await router.create(amount=500)
    body, headers = notification(simulator, transaction(simulator, created["id"], 500))
    assert await post(router, body, headers) == 200
    assert (await router.payment(created["id"]))["status"] == "succeeded"
    # The same notification again: accepted, nothing changes.
    assert await post(router, body, headers) == 200
    assert (await router.payment(created["id"]))["status"] == "succeeded"


@pytest.mark.parametrize("attack", ["forged_key", "tampered_body", "other_body", "bad_apiv3"])
async def test_bad_notifications_change_nothing(
    router: Router, simulator: Simulator, attack: str
) -> None:
    _, created = await router.create(amount=500)
    resource = transaction(simulator, created["id"], 500)
    if attack == "forged_key":
        forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        body, headers = notification(simulator, resource, key=forger)
    elif attack == "bad_apiv3":
        body, headers = notification(simulator, resource, apiv3_key="x" * 32)
    else:
        body, headers = notification(simulator, resource)
        if attack == "tampered_body":
            body = body.replace(
                b'"event_type":"TRANSACTION.SUCCESS"', b'"event_type":"TRANSACTION.SUCCESS" '
            )
        else:
            other, _ = notification(simulator, transaction(simulator, created["id"], 500))
            body = other
    status = await post(router, body, headers)
    assert status >= 400
    assert (await router.payment(created["id"]))["status"] == "pending"
    reasons = ("signature", "decrypt")
    assert sum(refused(router, r) for r in reasons) == 1


async def test_amount_mismatch_changes_nothing(router: Router, simulator: Simulator) -> None:
    _, created = await router.create(amount=500)
    body, headers = notification(simulator, transaction(simulator, created["id"], 1))
    assert await post(router, body, headers) >= 400
    assert (await router.payment(created["id"]))["status"] == "pending"
    assert refused(router, "amount_mismatch") == 1


async def test_unknown_order_changes_nothing(router: Router, simulator: Simulator) -> None:
    body, headers = notification(simulator, transaction(simulator, "pay_doesnotexist000000000", 5))
    assert await post(router, body, headers) >= 400
    assert refused(router, "unknown_order") == 1


async def test_unsigned_and_malformed_callbacks(router: Router) -> None:
    for body, headers in [
        (b"{}", {}),
        (
            b"not json",
            {
                "Wechatpay-Signature": "x",
                "Wechatpay-Timestamp": "1",
                "Wechatpay-Nonce": "n",
                "Wechatpay-Serial": "s",
            },
        ),
    ]:
        assert await post(router, body, headers) >= 400
    async with router.http.post(f"{router.url}/v1/notify/nope", data=b"{}") as resp:
        assert resp.status == 404


async def test_late_notification_never_undoes_a_final_state(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    _, created = await router.create(amount=500)
    status, _, _ = await router.request("POST", f"/v1/payments/{created['id']}/close")
    assert status == 200
    body, headers = notification(simulator, transaction(simulator, created["id"], 500))
    assert await post(router, body, headers) == 200
    assert (await router.payment(created["id"]))["status"] == "closed"
    conflicts = router.app[RUNTIME].metrics.conflicts.labels("wechat_main")
    assert conflicts._value.get() == 1
