"""A create the risk rules blocked: written `failed`, never sent to a channel, and counted
against its payer (`payer_failed_*` in rules). A checkout is judged again when its buyer's
wallet is known (`screen_attached`), and blocked then the same way."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import NoReturn

from router.clock import from_ms
from router.domain_errors import RiskDeclined
from router.models import Risk
from router.payments.moves import finish_payment
from router.risk.rules import RiskRequest, Verdict
from router.runtime import Runtime
from router.store.errors import STORE_UNAVAILABLE
from router.store.payments import StoredPayment

log = logging.getLogger("payrouter.payments")


def risk_of(verdict: Verdict | None) -> Risk | None:
    """What a payment shows of the risk rules' verdict (None: no risk file screened it)."""
    return None if verdict is None else Risk(decision=verdict.decision, rules=[*verdict.fired])


async def block_created(rt: Runtime, stored: StoredPayment, verdict: Verdict) -> NoReturn:
    """Fail the payment just written `processing` with the rule's reason, and raise the
    merchant's `402 risk_declined` naming it."""
    reason = verdict.reason or "blocked by risk rules"
    fields = {"failure": {"code": "risk_declined", "message": reason}}
    await finish_payment(
        rt.store, rt.metrics, stored, "failed", fields, source="risk", require="processing"
    )
    log.info("payment %s blocked: %s", stored.payment.id, reason)
    await count_declined(rt, stored)
    raise RiskDeclined("risk_declined", reason, payment_id=stored.payment.id)


_SEVERITY = {"allow": 0, "flag": 1, "block": 2}


async def screen_attached(
    rt: Runtime, stored: StoredPayment, wallet: str, client_ip: str, payer_id: str | None
) -> Risk | None:
    """Judge a checkout again once its buyer's wallet, address and payer id are known, before
    any channel sees it. Returns what the payment shows of both judgements (the worse
    decision, every rule that fired), or None when no rules are in force. A block fails the
    payment with the rule's reason and raises `RiskDeclined`."""
    p = stored.payment
    counted = {"merchant"}
    if stored.client_ip:
        counted.add("ip")
    if stored.payer_id:
        counted.add("payer")
    screen = await rt.risk.screen_attach(
        RiskRequest(
            merchant=stored.merchant_id,
            amount=p.amount,
            currency=p.currency,
            method=p.method,
            wallet=wallet,
            channel=None,
            livemode=p.livemode,
            metadata=p.metadata or {},
            ip=client_ip,
            payer=payer_id,
            now=from_ms(rt.clock.now_ms()),
        ),
        frozenset(counted),
    )
    if screen is None or screen.verdict is None:
        return p.risk
    verdict = screen.verdict
    earlier = p.risk or Risk(decision="allow")
    rules = [*earlier.rules, *(name for name in verdict.fired if name not in earlier.rules)]
    decision = max(earlier.decision, verdict.decision, key=_SEVERITY.__getitem__)
    risk = Risk(decision=decision, rules=rules)
    if verdict.decision != "block":
        return risk
    reason = verdict.reason or "blocked by risk rules"
    fields = {
        "failure": {"code": "risk_declined", "message": reason},
        "risk": risk.model_dump(mode="json"),
        "wallet": wallet,
        "client_ip": client_ip,
        "payer_id": payer_id,
    }
    await finish_payment(
        rt.store, rt.metrics, stored, "failed", fields, source="risk", require="pending"
    )
    log.info("checkout %s blocked in %s: %s", p.id, wallet, reason)
    await count_declined(rt, replace(stored, payer_id=payer_id))
    raise RiskDeclined("risk_declined", reason, payment_id=p.id)


async def count_declined(rt: Runtime, stored: StoredPayment) -> None:
    """Count a refused attempt in its payer's `failed` windows; best effort: the answer the
    merchant gets does not depend on it."""
    try:
        await rt.risk.count_failure(stored.merchant_id, stored.payer_id)
    except STORE_UNAVAILABLE as exc:
        log.warning("failed attempt not counted: %s: %s", type(exc).__name__, exc)
