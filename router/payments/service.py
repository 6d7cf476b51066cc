"""The life of a payment: create at a channel, close, and apply what the channel reports.

Create writes the payment as `processing` before any channel is called, so a crash during the
call leaves a record the re-query worker resolves (`router.payments.worker`).
`router.payments.failover` tries the routing decision's candidates in order; what the
merchant sees depends on how that ended:

| the candidates...                               | payment            | answer                |
|-------------------------------------------------|--------------------|-----------------------|
| one created the order                           | `pending`          | 201, action for buyer |
| one refused (the request's or the buyer's fault)| `failed`           | 402 channel_error     |
| none could take it (unavailable, open breakers) | `failed`           | 503, safe to retry    |
| one's outcome is unknown and cannot be checked  | stays `processing` | 502; the worker       |
|                                                 |                    | settles it            |
| one's answer names another amount (paid)        | stays `processing` | 502 channel_mismatch; |
|                                                 |                    | held for review       |

A `failed` payment gives its merchant_order_id back, so the merchant may create again.

Under an `Idempotency-Key` the key is recorded with the payment's order as it is written. A
retry that takes over the key of an attempt that died (or answered 502) meets that order and
answers about that payment, never creates a second one: a `processing` payment is settled
first, as the worker would (`router.payments.stranded`), then it is `201` with the payment, or
`402 payment_failed` naming it, or, while its channel cannot be asked, `502
channel_outcome_unknown` again.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from channels.base import Channel, CreateOrder, CreateResult, TradeState, TradeStatus
from channels.errors import ChannelError, ChannelRejected
from router import logs
from router.clock import from_ms, rfc3339
from router.domain_errors import (
    ChangeRefused,
    ChannelDeclined,
    ChannelDown,
    InvalidField,
    NotFound,
    StateConflict,
    TradeMismatch,
)
from router.models import CreatePaymentRequest, Payment, Routing
from router.payments import recorded
from router.payments.binding import KeyBinding, ensure_held
from router.payments.blocked import block_created, count_declined, risk_of
from router.payments.checkout import create_checkout
from router.payments.failover import Attempts, try_candidates
from router.payments.intake import check_create
from router.payments.mismatch import check_payment
from router.payments.moves import PaymentFinal, finish_payment
from router.payments.stranded import answer_for_bound
from router.payments.unrouted import fail_create
from router.risk.rules import Verdict
from router.routing.decide import decide
from router.routing.rules import RouteRequest
from router.routing.window import dimension
from router.runtime import Runtime
from router.store.batch import Batch
from router.store.payments import StoredPayment
from router.urls import check_live_url

log = logging.getLogger("payrouter.payments")


class PaymentService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def create(
        self,
        merchant_id: str,
        livemode: bool,
        req: CreatePaymentRequest,
        idem: KeyBinding | None = None,
        verdict: Verdict | None = None,
    ) -> StoredPayment:
        """Create and route a payment. With `idem`, the payment is bound to the key as it is
        written, and the 201 answer is written into the idempotency record in the same round
        trip as the payment's new status. If `idem` is already bound to a payment (an earlier
        attempt under the key created it), answer about that one instead. With the risk
        rules' `verdict`, the payment carries it; a block is written `failed` and never sent
        to a channel (`router.payments.blocked`).

        A `checkout` is written `pending` with no channel: its order is created when a buyer
        opens the hosted page in a wallet (`router.payments.checkout`)."""
        rt = self.rt
        if req.method == "checkout":
            return await create_checkout(rt, merchant_id, livemode, req, idem, verdict)
        method = req.method
        req = check_create(req, rt.table.accounts, livemode)
        if livemode and req.notify_url is not None:
            unsafe = await check_live_url(req.notify_url)
            if unsafe is not None:
                raise InvalidField("notify_url_unsafe", unsafe, param="notify_url")
        now_ms = rt.clock.now_ms()
        now = from_ms(now_ms)
        pay_id = rt.store.payments.new_id(merchant_id, req.merchant_order_id)
        logs.bind(payment=pay_id)
        table = rt.table  # one routing table for the whole request, even if a reload lands
        decision = await decide(
            table.loaded.config,
            table.accounts,
            rt.breakers,
            RouteRequest(
                payment_id=pay_id,
                method=method,
                currency=req.currency,
                amount=req.amount,
                wallet=req.wallet,
                merchant_id=merchant_id,
                metadata=req.metadata,
                now=now,
            ),
            pinned=req.channel,
            livemode=livemode,
        )
        first = decision.first
        expires_at = now + timedelta(seconds=req.expires_in or rt.settings.default_expires_in_s)
        stored = StoredPayment(
            payment=Payment(
                id=pay_id,
                merchant_order_id=req.merchant_order_id,
                amount=req.amount,
                currency=req.currency,
                method=req.method,
                wallet=first.capabilities.wallet,
                channel=first.account,
                status="processing",
                description=req.description,
                notify_url=req.notify_url,
                return_url=req.return_url,
                metadata=req.metadata,
                routing=Routing(rule=decision.rule),
                risk=risk_of(verdict),
                created_at=rfc3339(now),
                expires_at=rfc3339(expires_at),
                livemode=livemode,
            ),
            merchant_id=merchant_id,
            created_ms=now_ms,
            client_ip=req.client_ip,
            payer_id=req.payer_id,
        )
        due = stored.created_ms + int(rt.settings.workers.processing_grace_s * 1000)
        holder = await recorded.order_holder(rt, merchant_id, req.merchant_order_id)
        creation = await rt.store.payments.create(
            stored, due, None if idem is None else idem.key, recorded_holder=holder
        )
        rt.check_replicated("payment", creation.replicas)
        if creation.outcome == "made":
            # An earlier attempt under this key made it (and died, or answered 502).
            assert idem is not None
            await ensure_held(rt.store.idempotency, idem, rt.idempotency_lease_ms())
            earlier = await answer_for_bound(self, merchant_id, creation.payment_id)
            if earlier is not None:
                return earlier
            raise NotFound("payment", creation.payment_id)
        if creation.outcome == "held":
            raise StateConflict(
                "duplicate_order",
                f"merchant_order_id {req.merchant_order_id!r} is already used by payment "
                f"{creation.payment_id}",
                param="merchant_order_id",
                payment_id=creation.payment_id,
            )
        if verdict is not None and verdict.decision == "block":
            await block_created(rt, stored, verdict)

        def order_for(channel: Channel) -> CreateOrder:
            return CreateOrder(
                order_no=pay_id,
                created_at=now,
                amount=req.amount,
                currency=req.currency,
                method=method,
                description=req.description,
                notify_url=rt.callback_url(channel.account),
                expires_at=expires_at,
                return_url=req.return_url,
                client_ip=req.client_ip,
                payer_id=req.payer_id,
                auth_code=req.auth_code,
            )

        tried = await try_candidates(rt, stored, decision, order_for)
        if tried.stop == "created" and tried.result is not None:
            await self._check_created(tried, tried.result)
            return await self._created(tried, tried.result, idem)
        if tried.stop == "paid" and tried.paid is not None:
            await self._record_attempts(tried)
            await self.apply_trade(tried.stored, tried.paid, source="create")
            return await self.reload(tried.stored)
        try:
            await fail_create(rt, tried)
        except ChannelDeclined:
            await count_declined(rt, stored)
            raise
        except ChannelDown:
            # No channel had it: the payment failed and the 503 is not remembered, so a retry
            # under the key makes a new payment, as if this one had never been.
            if idem is not None:
                await rt.store.payments.unbind(stored, idem.key)
            raise

    async def _check_created(self, tried: Attempts, result: CreateResult) -> None:
        """A create answer that says the order is for another amount (a barcode paid at once)
        leaves the payment `processing`, held for review (`router.payments.mismatch`)."""
        try:
            check_payment(self.rt, "create", tried.stored.payment, result.amount, result.currency)
        except TradeMismatch:
            await self._record_attempts(tried)
            raise

    async def _record_attempts(self, tried: Attempts) -> None:
        routing = tried.stored.payment.routing.model_copy(update={"attempts": tried.attempts})
        await self.rt.store.payments.transition(
            tried.stored,
            "processing",
            {"routing": routing.model_dump(mode="json")},
            require="processing",
        )

    async def _created(
        self, tried: Attempts, result: CreateResult, idem: KeyBinding | None
    ) -> StoredPayment:
        """One round trip: the new status (and its event), the schedule, the breaker's
        success, and the idempotent answer."""
        rt, stored = self.rt, tried.stored
        p = stored.payment
        routing = p.routing.model_copy(update={"attempts": tried.attempts})
        fields: dict[str, Any] = {
            "action": result.action.as_dict(),
            "channel_trade_no": result.channel_trade_no,
            "routing": routing.model_dump(mode="json"),
        }
        status = "pending"
        if result.state is TradeState.SUCCEEDED:
            status = "succeeded"
            fields["paid_at"] = rfc3339(result.paid_at or rt.clock.utcnow())
        after = replace(
            stored, payment=Payment.model_validate(p.model_dump() | fields | {"status": status})
        )
        batch = Batch(rt.store.redis)
        index = rt.store.payments.queue_transition(
            batch, stored, status, fields, require="processing"
        )
        if status == "succeeded":
            rt.store.schedule.queue_done(batch, stored.merchant_id, p.id)
        else:
            # A barcode buyer is confirming on their phone right now: look again in a second.
            wait = 1.0 if p.method == "barcode" else rt.settings.workers.requery_after_s
            rt.store.schedule.queue_put(
                batch, stored.merchant_id, p.id, rt.clock.now_ms() + int(wait * 1000)
            )
        if tried.success is not None:
            account, ms, probe = tried.success
            dim = dimension(p.method, p.amount)
            rt.breakers.queue_record(batch, account, "ok", ms, probe, dim)
        if idem is not None:
            rt.store.idempotency.queue_finish(
                batch, idem.merchant_id, idem.key, idem.token, 201, idem.answer(after.payment)
            )
            idem.finished = True
        waited = rt.store.payments.queue_wait(batch, p.id)
        results = await batch.execute()
        if waited is not None:
            rt.check_replicated("payment_status", int(results[waited]))
        applied, _ = rt.store.payments.transition_result(results[index])
        if applied:
            rt.metrics.status_changes.labels(status, "create").inc()
            return after
        # A notification got there first (the buyer paid within milliseconds): answer with
        # what is stored, and correct the idempotent answer to match.
        now = await self.reload(stored)
        if idem is not None:
            await rt.store.idempotency.finish(
                idem.merchant_id, idem.key, idem.token, 201, idem.answer(now.payment)
            )
        return now

    async def get(self, merchant_id: str, pay_id: str) -> StoredPayment:
        stored = await self.rt.store.payments.get(merchant_id, pay_id)
        if stored is None:
            # Final and recorded, it left Redis after PAYROUTER_REDIS_RETENTION.
            stored = await recorded.payment(self.rt, merchant_id, pay_id)
        if stored is None:
            raise NotFound("payment", pay_id)
        return stored

    async def reload(self, stored: StoredPayment) -> StoredPayment:
        return await self.get(stored.merchant_id, stored.payment.id)

    async def close(self, merchant_id: str, pay_id: str) -> StoredPayment:
        stored = await self.get(merchant_id, pay_id)
        status = stored.payment.status
        if status == "closed":
            return stored
        if status != "pending":
            raise StateConflict(
                "payment_unexpected_state",
                f"Only a pending payment can be closed; this one is {status}",
                param="id",
                payment_id=pay_id,
            )
        await self.close_at_channel(stored, source="close")
        stored = await self.reload(stored)
        if stored.payment.status != "closed":
            raise StateConflict(
                "payment_unexpected_state",
                f"The payment became {stored.payment.status} before it could be closed",
                param="id",
                payment_id=pay_id,
            )
        return stored

    async def close_at_channel(self, stored: StoredPayment, *, source: str) -> str:
        """Close the order at the channel, then the payment. Returns the status now.

        If the channel refuses because the buyer has just paid, the payment follows the
        channel (queried) instead: the buyer's money decides.
        """
        rt = self.rt
        p = stored.payment
        if p.channel is None:
            # A checkout no buyer opened in a wallet: no channel has an order to close.
            _, now = await finish_payment(
                rt.store, rt.metrics, stored, "closed", {}, source=source, require="pending"
            )
            return now
        account = p.channel
        try:
            channel = rt.channel(account)
            await rt.call(account, "close", lambda: channel.close(stored.order_ref()))
        except ChannelRejected as exc:
            trade = await rt.call(account, "query", lambda: channel.query(stored.order_ref()))
            if trade.state in (TradeState.PENDING, TradeState.NOT_FOUND):
                raise ChangeRefused(
                    "channel_declined",
                    f"{p.channel} refused to close: {exc.code} {exc.message}",
                    payment_id=p.id,
                ) from exc
            return await self.apply_trade(stored, trade, source=source)
        except ChannelError as exc:
            raise ChannelDown(
                "channel_unavailable",
                f"{p.channel} could not close the order now: {exc.message}",
                payment_id=p.id,
            ) from exc
        _, now = await finish_payment(rt.store, rt.metrics, stored, "closed", {}, source=source)
        return now

    async def apply_trade(self, stored: StoredPayment, trade: TradeStatus, *, source: str) -> str:
        """Move the payment to what the channel reports; never backwards. Returns status now.
        Raises `TradeMismatch` (nothing applied) for a report of another amount or currency."""
        rt = self.rt
        p = stored.payment
        check_payment(rt, source, p, trade.amount, trade.currency)
        fields: dict[str, Any] = {}
        if trade.channel_trade_no:
            fields["channel_trade_no"] = trade.channel_trade_no
        status: PaymentFinal
        if trade.state is TradeState.SUCCEEDED:
            status = "succeeded"
            fields["paid_at"] = rfc3339(trade.paid_at or rt.clock.utcnow())
        elif trade.state is TradeState.FAILED:
            status = "failed"
            fields["failure"] = {
                "code": trade.channel_state,
                "message": "the buyer's payment failed at the channel",
            }
        elif trade.state is TradeState.CLOSED:
            status = "closed"
        else:
            return p.status
        applied, now = await finish_payment(
            rt.store, rt.metrics, stored, status, fields, source=source
        )
        if applied:
            log.info("payment %s is %s (from %s via %s)", p.id, status, trade.channel_state, source)
        elif now != status:
            # A final state is never rewritten, but a channel that disagrees with it (paid after
            # we closed, say) means money may have moved: someone must look at it.
            rt.metrics.conflicts.labels(p.channel).inc()
            log.error(
                "payment %s is %s but %s reports %s via %s: not applied, needs review",
                p.id,
                now,
                p.channel,
                trade.channel_state,
                source,
            )
        return now
