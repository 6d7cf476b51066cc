"""A create the risk rules blocked: written `failed`, never sent to a channel, and counted
against its payer (`payer_failed_*` in rules)."""

from __future__ import annotations

import logging
from typing import NoReturn

from router.domain_errors import RiskDeclined
from router.models import Risk
from router.payments.moves import finish_payment
from router.risk.rules import Verdict
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


async def count_declined(rt: Runtime, stored: StoredPayment) -> None:
    """Count a refused attempt in its payer's `failed` windows; best effort: the answer the
    merchant gets does not depend on it."""
    try:
        await rt.risk.count_failure(stored.merchant_id, stored.payer_id)
    except STORE_UNAVAILABLE as exc:
        log.warning("failed attempt not counted: %s: %s", type(exc).__name__, exc)
