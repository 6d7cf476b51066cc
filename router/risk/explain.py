"""Why a payment was (or would be) blocked: the rules in force, one by one, on the counters as
they are now (`payrouter risk explain`, `GET /admin/risk/explain/{payment_id}`)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from router.clock import from_ms
from router.models import Payment
from router.risk.control import RiskControl
from router.risk.rules import RiskRequest, activation, evaluate


def request_of(
    payment: Payment, merchant_id: str, created_ms: int, ip: str | None, payer: str | None
) -> RiskRequest:
    """The request a stored payment was judged on."""
    return RiskRequest(
        merchant=merchant_id,
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
        wallet=payment.wallet,
        channel=None,
        livemode=payment.livemode,
        metadata=payment.metadata,
        ip=ip,
        payer=payer,
        now=from_ms(created_ms),
    )


async def explain(control: RiskControl, req: RiskRequest) -> dict[str, Any]:
    """Each rule in force on `req` with the feature values it reads now, and the decision
    they make together. Counts nothing."""
    screen = await control.peek(req)
    config = control.config
    values = activation(req, screen.features, screen.lists, ZoneInfo(config.file.timezone))
    rules = []
    for rule in config.rules:
        alone = evaluate([rule], values, req.amount)
        rules.append(
            {
                "name": rule.name,
                "action": rule.action,
                "when": rule.source,
                "max_amount": rule.max_amount,
                "fires": bool(alone.fired),
                "error": bool(alone.errors),
                "features": {f.name: screen.features.get(f.name, 0) for f in rule.features},
            }
        )
    verdict = screen.verdict
    assert verdict is not None
    return {
        "config_version": config.digest,
        "decision": verdict.decision,
        "fired": list(verdict.fired),
        "reason": verdict.reason,
        "lists": list(screen.lists),
        "rules": rules,
    }
