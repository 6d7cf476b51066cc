"""Checkout payments: created without a wallet, routed when the buyer's app is known.

`POST /v1/payments` with `method: "checkout"` writes the payment `pending` with no `wallet`
and no `channel`; its `action` sends the buyer to the router's hosted page
(`PAYROUTER_PUBLIC_URL/pay/{id}`, `router.checkout`). Nothing is asked of a channel until a
buyer opens that page inside a wallet's app; then `CheckoutService.attach` creates the order
with the method the wallet's package names (`channels.spec.InApp`) through the same routing
decision, breakers and failover as an API create (`router.routing.decide`,
`router.payments.failover`). The payment stays `pending` meanwhile (a status never moves
backwards, and the buyer is still to pay); the channel's own action is kept beside it
(`StoredPayment.buyer_action`) for the page, while the merchant's `action` stays the page.

| event                       | no channel yet                  | with a channel             |
|-----------------------------|---------------------------------|----------------------------|
| `GET /v1/payments/{id}`     | pending, no wallet or channel   | pending, wallet, channel   |
| close, or expiry (worker)   | closed at once (no order)       | closed at the channel      |
| re-query worker             | waits for expiry                | queries the channel        |
| channel notification        | refused (no account matches)    | applied as for any payment |

One channel per checkout: its order number is the payment id, and a second wallet's app
opening the page is told the payment is under way in the first. The claim of the channel is
one script (`PaymentStore.claim_channel`), so two tabs opened at once make one order; it
names the account before the call, as failover does, so the worker and expiry find the order.

Risk: the amount and merchant are known at create, where an API create is assessed
(`PaymentService.create`); `attach` is the one place a rule that needs the wallet would be.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from channels.base import Channel, CreateOrder, IdentifiesPayer, Method, Wallet
from channels.errors import ChannelError, ChannelRejected
from channels.registry import REGISTRY
from router.clock import from_ms, rfc3339
from router.domain_errors import (
    ChannelDeclined,
    ChannelDown,
    DomainError,
    InvalidField,
    NotFound,
    StateConflict,
)
from router.models import Action, CreatePaymentRequest, Payment, Routing
from router.payments.binding import KeyBinding, ensure_held
from router.payments.blocked import block_created, risk_of, screen_attached
from router.payments.failover import try_candidates
from router.payments.moves import finish_payment
from router.risk.rules import Verdict
from router.routing.decide import decide
from router.routing.rules import RouteRequest
from router.runtime import Runtime
from router.store.payments import StoredPayment

if TYPE_CHECKING:
    from router.payments.service import PaymentService

log = logging.getLogger("payrouter.payments")


def page_url(rt: Runtime, pay_id: str) -> str:
    """The hosted checkout page of a payment."""
    return f"{rt.settings.base_url}/pay/{pay_id}"


def in_app_wallets(rt: Runtime, livemode: bool) -> list[Wallet]:
    """The wallets whose app can pay a checkout: an account in the mode offers its method."""
    offered = []
    for spec in REGISTRY.values():
        if spec.in_app is None:
            continue
        method = spec.in_app.method
        if any(
            c.livemode == livemode
            and c.channel.capabilities.wallet == spec.wallet
            and method in c.channel.capabilities.methods
            for c in rt.table.accounts.values()
        ):
            offered.append(spec.wallet)
    return offered


_NOT_FOR_CHECKOUT = ("wallet", "channel", "payer_id", "auth_code")


async def create_checkout(
    rt: Runtime,
    merchant_id: str,
    livemode: bool,
    req: CreatePaymentRequest,
    idem: KeyBinding | None,
    verdict: Verdict | None = None,
) -> StoredPayment:
    """Write a `pending` checkout with no channel, carrying the risk rules' `verdict`.
    Raises `InvalidField` or `StateConflict`, and `RiskDeclined` for a blocked one, written
    `failed` like any blocked create (`router.payments.blocked`)."""
    for name in _NOT_FOR_CHECKOUT:
        if getattr(req, name) is not None:
            raise InvalidField(
                "parameter_unexpected",
                f"{name} is not taken by checkout payments: the buyer's app chooses the wallet",
                param=name,
            )
    if not in_app_wallets(rt, livemode):
        mode = "in live mode" if livemode else "in the sandbox"
        raise InvalidField(
            "method_unsupported", f"no account {mode} can take a checkout", param="method"
        )
    now_ms = rt.clock.now_ms()
    now = from_ms(now_ms)
    pay_id = rt.store.payments.new_id(merchant_id, req.merchant_order_id)
    expires_at = now + timedelta(seconds=req.expires_in or rt.settings.default_expires_in_s)
    url = page_url(rt, pay_id)
    blocked = verdict is not None and verdict.decision == "block"
    stored = StoredPayment(
        payment=Payment(
            id=pay_id,
            merchant_order_id=req.merchant_order_id,
            amount=req.amount,
            currency=req.currency,
            method="checkout",
            # A blocked one is failed from `processing`, the way every blocked create is.
            status="processing" if blocked else "pending",
            action=Action(type="redirect", url=url, qr_code=url),
            description=req.description,
            notify_url=req.notify_url,
            return_url=req.return_url,
            metadata=req.metadata,
            routing=Routing(rule="checkout"),
            risk=risk_of(verdict),
            created_at=rfc3339(now),
            expires_at=rfc3339(expires_at),
            livemode=livemode,
        ),
        merchant_id=merchant_id,
        created_ms=now_ms,
    )
    # Nothing to ask a channel before a buyer opens the page: the first look is at expiry.
    due = int(expires_at.timestamp() * 1000)
    creation = await rt.store.payments.create(stored, due, None if idem is None else idem.key)
    rt.check_replicated("payment", creation.replicas)
    if creation.outcome == "held":
        raise StateConflict(
            "duplicate_order",
            f"merchant_order_id {req.merchant_order_id!r} is already used by payment "
            f"{creation.payment_id}",
            param="merchant_order_id",
            payment_id=creation.payment_id,
        )
    if blocked and creation.outcome == "created":
        assert verdict is not None
        await block_created(rt, stored, verdict)
    found = await rt.store.payments.get(merchant_id, creation.payment_id)
    if found is None:
        raise NotFound("payment", creation.payment_id)
    if creation.outcome == "made" and idem is not None:
        await ensure_held(rt.store.idempotency, idem, rt.idempotency_lease_ms())
    return found


@dataclass(frozen=True)
class Buyer:
    """Who opened the hosted page, as far as the router can tell."""

    wallet: Wallet
    client_ip: str
    payer_id: str | None = None
    """The buyer's id in the wallet, where its in-app payment needs one (WeChat's openid)."""


class CheckoutService:
    """Finds checkouts for the hosted page and routes them once the buyer's wallet is known."""

    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments
        self.rt = payments.rt

    async def find(self, pay_id: str) -> StoredPayment:
        """The checkout payment `pay_id`, whoever's it is. Raises `NotFound`."""
        stored = await self.rt.store.payments.find(pay_id)
        if stored is None or stored.payment.method != "checkout":
            raise NotFound("payment", pay_id)
        return stored

    async def refresh(self, stored: StoredPayment) -> StoredPayment:
        """Ask the channel about a pending checkout that has an order (the buyer is back from
        the wallet's cashier, likely before its notification), and apply what it says."""
        rt, p = self.rt, stored.payment
        if p.status != "pending" or p.channel is None:
            return stored
        account = p.channel
        try:
            channel = rt.channel(account)
            trade = await rt.call(account, "query", lambda: channel.query(stored.order_ref()))
            await self.payments.apply_trade(stored, trade, source="requery")
        except (ChannelError, DomainError) as exc:
            # The notification or the worker will tell; the page keeps asking meanwhile.
            log.info("checkout %s: %s could not be asked on return: %s", p.id, account, exc)
        return await self.payments.reload(stored)

    async def identity_channel(self, stored: StoredPayment, wallet: Wallet) -> IdentifiesPayer:
        """The account whose authorisation names the buyer for an in-app payment (its
        `payer_id` is only good with that account's app id): the routing decision's first
        candidate. Raises `InvalidField`/`ChannelDown` as routing does."""
        p = stored.payment
        in_app = REGISTRY[wallet].in_app
        assert in_app is not None
        decision = await decide(
            self.rt.table.loaded.config,
            self.rt.table.accounts,
            self.rt.breakers,
            self._route(stored, wallet, in_app.method),
            pinned=None,
            livemode=p.livemode,
        )
        channel = decision.first
        if not isinstance(channel, IdentifiesPayer):
            raise ChannelDown(
                "channel_unavailable",
                f"{channel.account} cannot identify the buyer for an in-app payment",
                payment_id=p.id,
            )
        return channel

    def _route(self, stored: StoredPayment, wallet: Wallet, method: Method) -> RouteRequest:
        p = stored.payment
        return RouteRequest(
            payment_id=p.id,
            method=method,
            currency=p.currency,
            amount=p.amount,
            wallet=wallet,
            merchant_id=stored.merchant_id,
            metadata=p.metadata,
            now=self.rt.clock.utcnow(),
        )

    async def attach(self, stored: StoredPayment, buyer: Buyer, return_url: str) -> StoredPayment:
        """Create the channel's order for the buyer's wallet (once; later calls get the
        same), and return the payment with its `buyer_action`. `return_url` is where the
        wallet's own page sends the buyer back to. Raises a `DomainError`: `StateConflict`
        when another wallet has the payment, `InvalidField`/`ChannelDown` from routing,
        `ChannelDeclined` when the channel refused (the payment is then `failed`)."""
        rt, p = self.rt, stored.payment
        spec = REGISTRY[buyer.wallet]
        if p.status != "pending" or spec.in_app is None:
            return stored
        if p.channel is not None:
            if p.wallet != buyer.wallet:
                raise StateConflict(
                    "checkout_in_other_wallet",
                    f"this payment is being paid with {REGISTRY[p.wallet or buyer.wallet].name}",
                    payment_id=p.id,
                )
            return stored
        method = spec.in_app.method
        risk = await screen_attached(rt, stored, buyer.wallet, buyer.client_ip, buyer.payer_id)
        table = rt.table
        decision = await decide(
            table.loaded.config,
            table.accounts,
            rt.breakers,
            self._route(stored, buyer.wallet, method),
            pinned=None,
            livemode=p.livemode,
        )
        first = decision.first
        claim: dict[str, Any] = {
            "channel": first.account,
            "wallet": buyer.wallet,
            "client_ip": buyer.client_ip,
            "payer_id": buyer.payer_id,
            "routing": Routing(rule=decision.rule).model_dump(mode="json"),
        }
        if risk is not None:
            claim["risk"] = risk.model_dump(mode="json")
        if not await rt.store.payments.claim_channel(p.id, claim):
            return await self.payments.reload(stored)
        stored = replace(
            stored,
            payment=p.model_copy(
                update={
                    "channel": first.account,
                    "wallet": buyer.wallet,
                    "routing": Routing(rule=decision.rule),
                    "risk": risk,
                }
            ),
            client_ip=buyer.client_ip,
            payer_id=buyer.payer_id,
        )
        expires_at = datetime.fromisoformat(p.expires_at or stored.payment.created_at)

        def order_for(channel: Channel) -> CreateOrder:
            return CreateOrder(
                order_no=p.id,
                created_at=from_ms(stored.created_ms),
                amount=p.amount,
                currency=p.currency,
                method=method,
                description=p.description,
                notify_url=rt.callback_url(channel.account),
                expires_at=expires_at,
                return_url=return_url,
                client_ip=buyer.client_ip,
                payer_id=buyer.payer_id,
            )

        tried = await try_candidates(rt, stored, decision, order_for, status="pending")
        stored = tried.stored
        routing = stored.payment.routing.model_copy(update={"attempts": tried.attempts})
        fields: dict[str, Any] = {"routing": routing.model_dump(mode="json")}
        if tried.stop == "created" and tried.result is not None:
            result = tried.result
            fields |= {
                "buyer_action": result.action.as_dict(),
                "channel_trade_no": result.channel_trade_no,
            }
            await rt.store.payments.transition(stored, "pending", fields, require="pending")
            if tried.success is not None:
                account, ms, probe = tried.success
                await rt.breakers.record(account, "ok", ms, probe)
            wait = rt.settings.workers.requery_after_s
            await rt.store.schedule.put(
                stored.merchant_id, p.id, rt.clock.now_ms() + int(wait * 1000)
            )
            return await self.payments.reload(stored)
        if tried.stop == "paid" and tried.paid is not None:
            await self.payments.apply_trade(stored, tried.paid, source="create")
            return await self.payments.reload(stored)
        exc = tried.error
        if tried.stop == "refused" and isinstance(exc, ChannelRejected):
            fields["failure"] = {"code": exc.code or "channel_declined", "message": exc.message}
            await finish_payment(
                rt.store, rt.metrics, stored, "failed", fields, source="create", require="pending"
            )
            raise ChannelDeclined(
                "channel_declined",
                f"{stored.payment.channel} refused the payment: {exc.code} {exc.message}",
                payment_id=p.id,
            )
        if tried.stop == "unknown":
            # The order may exist: the channel stays named, so the worker asks it and expiry
            # closes it there.
            await rt.store.payments.transition(stored, "pending", fields, require="pending")
            wait = rt.settings.workers.requery_after_s
            await rt.store.schedule.put(
                stored.merchant_id, p.id, rt.clock.now_ms() + int(wait * 1000)
            )
        else:
            # No channel had it: give the checkout back, so the buyer may try again.
            fields |= {"channel": None, "wallet": None, "payer_id": None, "client_ip": None}
            await rt.store.payments.transition(stored, "pending", fields, require="pending")
        raise ChannelDown(
            "channel_unavailable",
            "the wallet's payment could not be started now; try again in a moment",
            payment_id=p.id,
        )
