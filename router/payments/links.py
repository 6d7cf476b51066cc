"""Payment links: a shop's one permanent code, fixed amount or entered by the buyer; each
scan becomes a new checkout payment (`router.payments.checkout`) under an order id made from
the link and its count, so two scans are two payments."""

from __future__ import annotations

import re

from router.clock import from_ms, rfc3339
from router.domain_errors import InvalidField, NotFound
from router.ids import new_id
from router.models import MAX_AMOUNT, CreatePaymentRequest
from router.payments.service import PaymentService
from router.risk.rules import Verdict
from router.store.links import LinkStore, PaymentLink
from router.store.payments import StoredPayment

LINK_ID = re.compile(r"^plink_[A-Za-z0-9]{8,40}$")
_YUAN = re.compile(r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$")


def parse_entered_amount(text: str) -> int:
    """A buyer's amount in yuan ("12", "12.5", "12.34") as fen. Raises `InvalidField`."""
    value = text.strip()
    if not _YUAN.fullmatch(value):
        raise InvalidField(
            "amount_invalid", "amount must be a number of yuan such as 12.34", param="amount"
        )
    whole, _, fraction = value.partition(".")
    fen = int(whole) * 100 + int(fraction.ljust(2, "0") or 0)
    if not 1 <= fen <= MAX_AMOUNT:
        raise InvalidField("amount_invalid", "amount is out of range", param="amount")
    return fen


class LinkService:
    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments
        self.store = LinkStore(payments.rt.store.redis)

    async def create(
        self,
        merchant_id: str,
        livemode: bool,
        *,
        amount: int | None,
        currency: str,
        description: str,
        return_url: str | None,
    ) -> PaymentLink:
        now_ms = self.payments.rt.clock.now_ms()
        link = PaymentLink(
            id=new_id("plink"),
            merchant_id=merchant_id,
            amount=amount,
            currency=currency,
            description=description,
            return_url=return_url,
            livemode=livemode,
            created_at=rfc3339(from_ms(now_ms)),
            created_ms=now_ms,
        )
        await self.store.create(link)
        return link

    async def find(self, link_id: str) -> PaymentLink:
        """The link, whoever's it is (a buyer scanning it). Raises `NotFound`."""
        link = await self.store.get(link_id) if LINK_ID.fullmatch(link_id) else None
        if link is None:
            raise NotFound("payment_link", link_id)
        return link

    async def get(self, merchant_id: str, link_id: str) -> PaymentLink:
        link = await self.find(link_id)
        if link.merchant_id != merchant_id:
            raise NotFound("payment_link", link_id)
        return link

    async def disable(self, merchant_id: str, link_id: str) -> PaymentLink:
        await self.get(merchant_id, link_id)
        await self.store.disable(link_id)
        return await self.get(merchant_id, link_id)

    def amount_of(self, link: PaymentLink, entered: str | None) -> int:
        """What a scan pays: the link's amount, else the buyer's `entered` (yuan). Raises
        `InvalidField` naming `amount`, or `NotFound` for a disabled link."""
        if not link.active:
            raise NotFound("payment_link", link.id)
        if link.amount is not None:
            return link.amount
        if entered is None:
            raise InvalidField("parameter_missing", "amount is required", param="amount")
        return parse_entered_amount(entered)

    async def pay(
        self, link: PaymentLink, amount: int, verdict: Verdict | None = None
    ) -> StoredPayment:
        """A new checkout for one scan of an active link, carrying the risk rules' `verdict`
        on the scan (a block is written `failed` and raises `RiskDeclined`)."""
        count = await self.store.count_payment(link.id)
        req = CreatePaymentRequest(
            amount=amount,
            currency=link.currency,
            merchant_order_id=f"{link.id}-{count}",
            description=link.description,
            method="checkout",
            return_url=link.return_url,
            metadata={"payment_link": link.id},
        )
        return await self.payments.create(link.merchant_id, link.livemode, req, None, verdict)
