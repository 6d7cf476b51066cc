"""Payments whose create never finished, and what a retry under the same key answers.

A `processing` payment past its create (the creating process died, or the channel's answer
never came) is settled by asking the channel: the re-query worker does it after a grace
period (`router.payments.worker`), and a retry that takes over the Idempotency-Key of that
create does it at once (`answer_for_bound`), so the merchant hears about the payment made
under its key instead of getting a second payment or a `duplicate_order`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels.base import TradeState
from channels.errors import ChannelError
from router.domain_errors import ChannelDeclined, ChannelProblem, OutcomeUnknown, TradeMismatch
from router.payments.moves import finish_payment
from router.store.payments import StoredPayment

if TYPE_CHECKING:
    from router.payments.service import PaymentService


async def settle_stranded(service: PaymentService, stored: StoredPayment) -> str:
    """Settle a `processing` payment whose create will never finish: ask the channel. A paid
    order is `succeeded`; any other is closed at the channel if it exists (the buyer was never
    shown it, so it must never be payable) and the payment is `failed`. Returns the status."""
    rt = service.rt
    channel = rt.channel(stored.account)
    trade = await rt.call(stored.account, "query", lambda: channel.query(stored.order_ref()))
    if trade.state is TradeState.SUCCEEDED:
        return await service.apply_trade(stored, trade, source="requery")
    if trade.state is TradeState.PENDING:
        await rt.call(stored.account, "close", lambda: channel.close(stored.order_ref()))
    failure = {
        "code": "channel_outcome_unknown",
        "message": "the channel's answer to create never arrived; "
        "the order was closed at the channel",
    }
    _, now = await finish_payment(
        rt.store,
        rt.metrics,
        stored,
        "failed",
        {"failure": failure},
        source="requery",
        require="processing",
    )
    return now


async def answer_for_bound(
    service: PaymentService, merchant_id: str, pay_id: str
) -> StoredPayment | None:
    """The answer about a payment an earlier attempt created under the same Idempotency-Key:
    the payment (settled first if it is still `processing`), or `ChannelDeclined`
    (`payment_failed`) naming it, or `OutcomeUnknown` while its channel cannot be asked. None
    if that attempt wrote no payment."""
    stored = await service.rt.store.payments.get(merchant_id, pay_id)
    if stored is None:
        return None
    p = stored.payment
    if p.status == "processing":
        try:
            await settle_stranded(service, stored)
        except TradeMismatch:
            raise  # the channel contradicts the payment: it is held, not unknown
        except (ChannelError, ChannelProblem) as exc:
            # The worker may have settled it meanwhile (and closed the order first).
            stored = await service.reload(stored)
            if stored.payment.status == "processing":
                raise OutcomeUnknown(
                    "channel_outcome_unknown",
                    f"payment {pay_id}, created under this Idempotency-Key by an earlier "
                    f"attempt, is still processing: {p.channel} cannot be asked now "
                    f"({exc.message}); retry with the same key later",
                    payment_id=pay_id,
                ) from exc
        stored = await service.reload(stored)
        p = stored.payment
    if p.status == "failed":
        why = f": {p.failure.code} {p.failure.message}" if p.failure else ""
        raise ChannelDeclined(
            "payment_failed",
            f"payment {pay_id}, created under this Idempotency-Key by an earlier attempt, "
            f"failed{why}. Nothing can be paid on it; create a new payment with a new "
            "Idempotency-Key",
            payment_id=pay_id,
        )
    return stored
