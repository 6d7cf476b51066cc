"""A channel's report that contradicts the payment or refund it is about: refused and held.

A query, pay, refund or close answer, or a notification, that names another amount or
currency than the router asked for is never applied: the router does not record a payment or
refund as anything but what it asked for, whatever moved at the channel. `check_report` counts
it in `payrouter_payment_conflicts_total{account}`, logs it in one line (no traceback; `via`
says where it came from) and raises `TradeMismatch`. The API answers that `502 channel_error`
/ `channel_mismatch` naming the payment (and refund); the worker and the notification endpoint
refuse it the same way. The payment or refund stays as it was, so the re-query worker meets
the channel's answer again (and counts it again) until someone has looked at it.
"""

from __future__ import annotations

import logging

from router.domain_errors import TradeMismatch
from router.models import Payment
from router.runtime import Runtime

log = logging.getLogger("payrouter.mismatch")


def check_report(
    rt: Runtime,
    via: str,
    *,
    account: str,
    payment_id: str,
    amount: int,
    reported_amount: int | None,
    currency: str | None = None,
    reported_currency: str | None = None,
    refund_id: str | None = None,
) -> None:
    """Raise `TradeMismatch` (counted and logged) if what the channel reports (`None`: it
    does not say) differs from ours."""
    if (reported_amount is None or reported_amount == amount) and (
        reported_currency is None or currency is None or reported_currency == currency
    ):
        return
    subject = f"payment {payment_id}" if refund_id is None else f"refund {refund_id}"
    ours = f"{amount} {currency}" if currency else str(amount)
    said = reported_amount if reported_amount is not None else amount
    theirs = f"{said} {reported_currency or currency}" if currency else str(said)
    rt.metrics.conflicts.labels(account).inc()
    log.error(
        "%s is %s but %s reports %s via %s: not applied, needs review",
        subject,
        ours,
        account,
        theirs,
        via,
    )
    raise TradeMismatch(
        f"{account} reports {theirs} for {subject}, which is {ours}: nothing was applied and "
        f"the {subject.split()[0]} is held as it was for review; retrying does not help",
        payment_id=payment_id,
        refund_id=refund_id,
    )


def check_payment(
    rt: Runtime, via: str, payment: Payment, amount: int | None, currency: str | None
) -> None:
    """`check_report` for what a channel reports about `payment`."""
    check_report(
        rt,
        via,
        account=payment.channel or "",
        payment_id=payment.id,
        amount=payment.amount,
        reported_amount=amount,
        currency=payment.currency,
        reported_currency=currency,
    )
