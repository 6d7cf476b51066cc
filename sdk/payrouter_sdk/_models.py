"""The API's objects as typed, read-only models.

They mirror the router's responses but accept fields they do not know (kept as extra
attributes) and plain strings where the API enumerates values, so this SDK keeps working when
the API grows. Amounts are integers in the currency's minor unit (fen for CNY); times are
RFC 3339 strings as the API sends them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class APIObject(BaseModel):
    """Base of every model: unknown fields are kept, instances are immutable."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Action(APIObject):
    """What to show the buyer next. `type`: `qr_code`, `redirect`, `form_post`,
    `app_params` or `none`; only the members that type uses are set."""

    type: str
    qr_code: str | None = None
    url: str | None = None
    fields: dict[str, str] | None = None
    params: dict[str, str] | None = None


class Failure(APIObject):
    """Why a payment or refund failed, with the channel's own code where it gave one."""

    code: str
    message: str


class RoutingAttempt(APIObject):
    channel: str
    outcome: str
    ms: int
    code: str | None = None
    hedge: bool = False
    """Sent while the previous attempt was still under way (a hedged create)."""


class Routing(APIObject):
    """How the router chose the channel: the rule and every attempt, in order."""

    rule: str
    attempts: list[RoutingAttempt] = Field(default_factory=list)


class Risk(APIObject):
    """The risk rules' decision: `allow`, `flag` (sent, marked for review) or `block`
    (refused, never sent), and the rules that fired."""

    decision: str
    rules: list[str] = Field(default_factory=list)


class Payment(APIObject):
    """A payment. `status`: `processing` → `pending` → `succeeded` | `failed` | `closed`."""

    id: str
    object: str = "payment"
    merchant_order_id: str
    amount: int
    currency: str
    amount_refunded: int = 0
    method: str
    wallet: str | None = None
    channel: str | None = None
    channel_trade_no: str | None = None
    status: str
    action: Action | None = None
    description: str | None = None
    notify_url: str | None = None
    return_url: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    failure: Failure | None = None
    routing: Routing | None = None
    risk: Risk | None = None
    created_at: str
    expires_at: str | None = None
    paid_at: str | None = None
    livemode: bool = False


class Refund(APIObject):
    """A refund of all or part of a payment. `status`: `pending` → `succeeded` | `failed`."""

    id: str
    object: str = "refund"
    payment: str
    amount: int
    currency: str
    status: str
    reason: str | None = None
    merchant_refund_id: str | None = None
    channel_refund_no: str | None = None
    failure: Failure | None = None
    created_at: str
    succeeded_at: str | None = None
    livemode: bool = False


class DeliveryAttempt(APIObject):
    """One attempt to deliver an event: the HTTP status the endpoint answered, or the error."""

    at: str
    url: str
    status: int | None = None
    ms: int = 0
    error: str | None = None


class Delivery(APIObject):
    """`state`: `pending`, `retrying`, `delivered`, `dead` or `no_endpoint`."""

    state: str
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class Event(APIObject):
    """A webhook event: `data` is the payment or refund as it was when the event happened.

    Events read from the API also carry `delivery` (one event by id: with its attempts);
    events received as webhooks do not.
    """

    id: str
    object: str = "event"
    type: str
    created_at: str
    data: dict[str, Any]
    delivery: Delivery | None = None

    @property
    def data_object(self) -> Payment | Refund | dict[str, Any]:
        """`data` as a `Payment` or `Refund` when it is one; otherwise the dict itself."""
        kind = self.data.get("object")
        if kind == "payment":
            return Payment.model_validate(self.data)
        if kind == "refund":
            return Refund.model_validate(self.data)
        return self.data


class ListObject(APIObject, Generic[T]):
    """One page of a list, newest first; `has_more` says whether another page follows."""

    object: str = "list"
    data: list[T]
    has_more: bool
    url: str | None = None


class PaymentList(ListObject[Payment]):
    pass


class RefundList(ListObject[Refund]):
    pass


class EventList(ListObject[Event]):
    pass


class WebhookEndpoint(APIObject):
    """A URL the merchant's webhooks go to; `status` `disabled` after it answered 410 Gone."""

    id: str
    object: str = "webhook_endpoint"
    url: str
    status: str
    disabled_at: str | None = None
    disabled_by_event: str | None = None


class WebhookEndpointList(ListObject[WebhookEndpoint]):
    pass


class PaymentLink(APIObject):
    """A shop's permanent payment link: each scan of `url` (also `qr_code`) is a new checkout
    payment; `amount` None means the buyer enters it."""

    id: str
    object: str = "payment_link"
    url: str
    qr_code: str
    amount: int | None = None
    currency: str
    description: str
    return_url: str | None = None
    active: bool
    payments: int = 0
    created_at: str
    livemode: bool


class PaymentLinkList(ListObject[PaymentLink]):
    pass


class Settlement(APIObject):
    """What the merchant is paid for one day in one currency (T+1), in minor units:
    `net` = `gross` - `refunds` - `discounts` - `fees`; negative when the merchant owes."""

    id: str
    object: str = "settlement"
    day: str
    currency: str
    livemode: bool
    gross: int
    refunds: int
    discounts: int
    fees: int
    net: int
    payment_count: int
    refund_count: int
    created_at: str


class SettlementList(ListObject[Settlement]):
    pass


class SettlementLine(APIObject):
    """One statement line of a settlement; `discount`, `fee` and `net` are its signed share."""

    object: str = "settlement_line"
    number: int
    kind: str
    payment_id: str
    refund_id: str | None = None
    merchant_order_id: str
    account: str
    channel_trade_no: str
    amount: int
    discount: int
    fee: int
    net: int
    booked_at: str


class SettlementLineList(APIObject):
    """One page of a settlement's lines, in order (`starting_after` is a line's `number`)."""

    object: str = "list"
    data: list[SettlementLine]
    has_more: bool
    url: str | None = None
