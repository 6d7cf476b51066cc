"""Refunds: reserve the amount atomically, ask the channel, follow it to a final status.

| the channel...                 | refund            | answer                                      |
|--------------------------------|-------------------|---------------------------------------------|
| refunded, or accepted it       | succeeded/pending | 201 with the refund                         |
| outcome unknown                | pending           | 201; the worker asks again, and re-sends    |
|                                |                   | the same refund number if the channel has   |
|                                |                   | none (every channel dedupes on it)          |
| refused                        | failed            | 402 channel_error (error.refund_id)         |
| answered with another amount   | pending, held     | 502 channel_mismatch; nothing applied, for  |
|                                |                   | review (the worker meets it again)          |
| certainly did not receive it   | failed            | 503 channel_error; the amount is free again |

A refund named by the merchant (`merchant_refund_id`) or made under an Idempotency-Key gets
an id derived from that name (`RefundStore.refund_id`), so a second attempt meets the first
refund where it would write its own: a retry after a crash answers with that refund (the
worker settles it) and never refunds a second time. A `merchant_refund_id` is unique per
merchant: it is claimed for its payment before the refund is written.

A failed refund gives its amount back to what can be refunded. The sum of a payment's pending
and succeeded refunds never exceeds its amount (`router.store.scripts.CREATE_REFUND`).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.base import RefundOrder, RefundState, RefundStatus
from channels.errors import ChannelError, ChannelOutcomeUnknown, ChannelRejected
from router.clock import from_ms, rfc3339
from router.domain_errors import ChannelDeclined, ChannelDown, InvalidField, NotFound, StateConflict
from router.ids import REFUND_ID
from router.models import CreateRefundRequest, Refund
from router.payments import recorded
from router.payments.binding import KeyBinding, ensure_held
from router.payments.mismatch import check_report
from router.payments.moves import RefundFinal, finish_refund
from router.payments.service import PaymentService
from router.runtime import Runtime
from router.store.payments import StoredPayment
from router.store.refunds import StoredRefund

log = logging.getLogger("payrouter.refunds")


def _check_same_request(existing: StoredRefund, req: CreateRefundRequest) -> None:
    """A repeated `merchant_refund_id` returns its refund only if it asks for the same one.

    Same amount, or no amount (all that is left) when the refund took all that was left when
    it was made; and the same reason. Anything else is another refund under a used id:
    `StateConflict` `merchant_refund_id_reused`, never the old refund as if it were the new one.
    """
    r = existing.refund
    if req.amount is not None:
        same_amount = req.amount == r.amount
    else:
        same_amount = existing.refundable_before in (None, r.amount)
    differs = [
        name
        for name, same in (("amount", same_amount), ("reason", req.reason == r.reason))
        if not same
    ]
    if differs:
        asked = "all that is left" if req.amount is None else str(req.amount)
        raise StateConflict(
            "merchant_refund_id_reused",
            f"merchant_refund_id {req.merchant_refund_id!r} was used for refund {r.id} "
            f"(amount {r.amount}, reason {r.reason!r}); this request differs in "
            f"{' and '.join(differs)} (amount {asked}, reason {req.reason!r}): "
            "use a new merchant_refund_id for another refund",
            param="merchant_refund_id",
            refund_id=r.id,
        )


class RefundService:
    def __init__(self, runtime: Runtime, payments: PaymentService) -> None:
        self.rt = runtime
        self.payments = payments

    async def create(
        self,
        merchant_id: str,
        pay_id: str,
        req: CreateRefundRequest,
        idem: KeyBinding | None = None,
    ) -> tuple[StoredRefund, bool]:
        """Returns the refund and whether it is new (False: merchant_refund_id seen before).

        With `idem` the refund is bound to the Idempotency-Key as it is written; if an earlier
        attempt under the key (it died) already wrote one, the answer is about that one."""
        rt = self.rt
        stored_payment = await self.payments.get(merchant_id, pay_id)
        if await rt.store.payments.find(pay_id) is None:
            # A payment that left Redis: put back from the record, then refunded as any other.
            await recorded.restore(rt, pay_id)
        p = stored_payment.payment
        if p.channel is None:
            raise StateConflict(
                "payment_unexpected_state",
                f"Only a succeeded payment can be refunded; this one is {p.status}",
                param="id",
                payment_id=p.id,
            )
        try:
            channel = rt.channel(p.channel)
        except ChannelError as exc:
            raise ChannelDown("channel_unavailable", exc.message, payment_id=p.id) from exc
        partial = req.amount is not None and req.amount != p.amount
        if partial and not channel.capabilities.partial_refunds:
            raise InvalidField(
                "partial_refund_unsupported",
                f"{p.channel} refunds whole payments only: leave amount out",
                param="amount",
            )
        mrid = req.merchant_refund_id
        if mrid is not None:
            claimed_for = await rt.store.refunds.claim_merchant_refund_id(merchant_id, mrid, p.id)
            if claimed_for != p.id:
                other = rt.store.refunds.refund_id(merchant_id, claimed_for, mrid, None)
                raise StateConflict(
                    "duplicate_refund",
                    f"merchant_refund_id {mrid!r} belongs to refund {other} of another payment",
                    param="merchant_refund_id",
                    refund_id=other,
                )
        now_ms = rt.clock.now_ms()
        key = None if idem is None else idem.key
        stored = StoredRefund(
            refund=Refund(
                id=rt.store.refunds.refund_id(merchant_id, p.id, mrid, key),
                payment=p.id,
                amount=req.amount or 0,
                currency=p.currency,
                status="pending",
                reason=req.reason,
                merchant_refund_id=req.merchant_refund_id,
                created_at=rfc3339(from_ms(now_ms)),
                livemode=p.livemode,
            ),
            merchant_id=merchant_id,
            created_ms=now_ms,
        )
        due = now_ms + int(rt.settings.workers.processing_grace_s * 1000)
        created = await rt.store.refunds.create(stored, req.amount, due)
        rt.check_replicated("refund", created.replicas)
        if created.outcome == "exists":
            if mrid is not None:
                existing = await self.get(merchant_id, created.value)
                _check_same_request(existing, req)
                return existing, False
            # Made under this Idempotency-Key by an earlier attempt (it died, or answered 5xx).
            assert idem is not None
            await ensure_held(rt.store.idempotency, idem, rt.idempotency_lease_ms())
            return await self._earlier(merchant_id, created.value), True
        if mrid is not None and created.outcome != "created":
            # Nothing was written under the id: give it back, as if it was never asked for.
            await rt.store.refunds.unclaim_merchant_refund_id(merchant_id, mrid, p.id)
        if created.outcome == "not_refundable":
            raise StateConflict(
                "payment_not_refundable",
                f"Only a succeeded payment can be refunded; this one is {created.value}",
                param="id",
                payment_id=p.id,
            )
        if created.outcome == "exceeds":
            raise InvalidField(
                "refund_exceeds_payment",
                f"The refund is more than is left to refund ({created.value})",
                param="amount",
                payment_id=p.id,
            )
        stored = await self.get(merchant_id, stored.refund.id)
        return await self._send(stored, stored_payment, source="create"), True

    async def _earlier(self, merchant_id: str, re_id: str) -> StoredRefund:
        """A refund an earlier attempt under the same key wrote: a pending one is left to the
        worker (it re-sends the same refund number if the channel has none)."""
        stored = await self.get(merchant_id, re_id)
        if stored.refund.status == "failed":
            r = stored.refund
            why = f": {r.failure.code} {r.failure.message}" if r.failure else ""
            raise ChannelDeclined(
                "refund_failed",
                f"refund {r.id}, created under this Idempotency-Key by an earlier attempt, "
                f"failed{why}",
                payment_id=r.payment,
                refund_id=r.id,
            )
        return stored

    async def _send(
        self, stored: StoredRefund, payment: StoredPayment, *, source: str
    ) -> StoredRefund:
        rt = self.rt
        r = stored.refund
        channel = rt.channel(payment.account)
        order = self.refund_order(stored, payment)
        try:
            status = await rt.call(channel.account, "refund", lambda: channel.refund(order))
        except ChannelOutcomeUnknown as exc:
            log.warning("refund %s outcome unknown at %s: %s", r.id, channel.account, exc.message)
            return stored
        except ChannelError as exc:
            failure = {"code": exc.code or type(exc).__name__, "message": exc.message}
            await self._finish(stored, "failed", {"failure": failure}, channel.account, source)
            rejected = isinstance(exc, ChannelRejected)
            # The refund failed either way; which error says whether the channel refused it.
            kind = ChannelDeclined if rejected else ChannelDown
            raise kind(
                "channel_declined" if rejected else "channel_unavailable",
                f"{channel.account} {'refused' if rejected else 'could not take'} the refund: "
                f"{exc.code} {exc.message}".strip(),
                payment_id=r.payment,
                refund_id=r.id,
            ) from exc
        await self.apply(stored, status, account=channel.account, source=source)
        return await self.get(stored.merchant_id, r.id)

    def refund_order(self, stored: StoredRefund, payment: StoredPayment) -> RefundOrder:
        r = stored.refund
        return RefundOrder(
            refund_no=r.id,
            created_at=from_ms(stored.created_ms),
            payment=payment.order_ref(),
            amount=r.amount,
            total=payment.payment.amount,
            currency=r.currency,
            notify_url=self.rt.callback_url(payment.account),
            reason=r.reason,
        )

    async def get(self, merchant_id: str, re_id: str) -> StoredRefund:
        stored = await self.rt.store.refunds.get(merchant_id, re_id)
        if stored is None:
            stored = await recorded.refund(self.rt, merchant_id, re_id)
        if stored is None:
            raise NotFound("refund", re_id)
        return stored

    async def list(
        self, merchant_id: str, pay_id: str, *, limit: int, starting_after: str | None = None
    ) -> tuple[list[StoredRefund], bool]:
        """A page of the refunds of payment `pay_id` (which the caller has found), newest
        first, after the refund named by `starting_after`. Returns (page, has_more)."""
        named, live = await self.rt.store.refunds.all_of_payment(merchant_id, pay_id)
        found = live
        if len(live) < len(named) or not named:
            # Some (or all, with the payment) left Redis after PAYROUTER_REDIS_RETENTION.
            found = await recorded.refunds(self.rt, merchant_id, pay_id, live)
        ids = [r.refund.id for r in found]
        if starting_after is not None:
            if not REFUND_ID.fullmatch(starting_after) or starting_after not in ids:
                raise InvalidField(
                    "resource_missing",
                    f"starting_after: no such refund of this payment {starting_after!r}",
                    param="starting_after",
                )
            found = found[ids.index(starting_after) + 1 :]
        return found[:limit], len(found) > limit

    async def apply(
        self, stored: StoredRefund, status: RefundStatus, *, account: str, source: str
    ) -> str:
        """Move the refund to what the channel reports. Returns its status now. Raises
        `TradeMismatch` (nothing applied) for a report of another amount."""
        r = stored.refund
        check_report(
            self.rt,
            source,
            account=account,
            payment_id=r.payment,
            refund_id=r.id,
            amount=r.amount,
            reported_amount=status.amount,
        )
        fields: dict[str, Any] = {}
        if status.channel_refund_no:
            fields["channel_refund_no"] = status.channel_refund_no
        if status.state is RefundState.SUCCEEDED:
            fields["succeeded_at"] = rfc3339(status.refunded_at or self.rt.clock.utcnow())
            return await self._finish(stored, "succeeded", fields, account, source)
        if status.state is RefundState.FAILED:
            fields["failure"] = {
                "code": status.channel_state,
                "message": "the channel could not complete the refund",
            }
            return await self._finish(stored, "failed", fields, account, source)
        if fields:
            await self.rt.store.refunds.transition(stored, "pending", fields)
        return r.status

    async def _finish(
        self,
        stored: StoredRefund,
        status: RefundFinal,
        fields: dict[str, Any],
        account: str,
        source: str,
    ) -> str:
        rt = self.rt
        applied, now = await finish_refund(
            rt.store, rt.metrics, stored, status, fields, source=source
        )
        if applied:
            log.info("refund %s is %s (via %s)", stored.refund.id, status, source)
        elif now != status:
            rt.metrics.conflicts.labels(account).inc()
            log.error(
                "refund %s is %s but the channel reports %s via %s: not applied, needs review",
                stored.refund.id,
                now,
                status,
                source,
            )
        return now

    async def settle(self, stored: StoredRefund) -> str:
        """The worker's look at a pending refund. Returns what it found, for metrics."""
        rt = self.rt
        payment = await self.payments.get(stored.merchant_id, stored.refund.payment)
        channel = rt.channel(payment.account)
        order = self.refund_order(stored, payment)
        status = await rt.call(channel.account, "query_refund", lambda: channel.query_refund(order))
        if status.state is RefundState.NOT_FOUND:
            age = rt.clock.now() - stored.created_ms / 1000
            if age < rt.settings.workers.processing_grace_s:
                return "refund_recent"
            # The channel never got it (or lost it): the same refund number again is safe.
            status = await rt.call(channel.account, "refund", lambda: channel.refund(order))
            await self.apply(stored, status, account=channel.account, source="requery")
            return "refund_resent"
        now = await self.apply(stored, status, account=channel.account, source="requery")
        return f"refund_{now}"
