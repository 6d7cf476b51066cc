"""The contract between the router and a channel adapter.

A channel adapter turns the router's neutral requests (`CreateOrder`, an order number) into one
channel's wire protocol and back. Adapters declare what they can do as data
(`Capabilities`), so the router filters candidates before it calls anything. Expected outcomes
(a QR code, a redirect, "the buyer has not paid yet") are values; only failures raise, from
the tree in `channels.errors`.

Amounts are integers in the currency's minor unit on both sides of this contract.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol, get_args, runtime_checkable

Method = Literal["qr", "web", "h5", "app", "jsapi", "barcode"]
Wallet = Literal["wechat", "alipay", "unionpay"]
ActionType = Literal["qr_code", "redirect", "form_post", "app_params", "none"]

METHODS: tuple[Method, ...] = ("qr", "web", "h5", "app", "jsapi", "barcode")
WALLETS: tuple[Wallet, ...] = get_args(Wallet)
"""The merchant API's `wallet` values; a new wallet extends `Wallet` alone."""


@dataclass(frozen=True)
class Capabilities:
    """What a channel account can do, checked by the router before any call."""

    wallet: Wallet
    methods: frozenset[Method]
    currencies: frozenset[str]
    partial_refunds: bool = True

    def supports(self, method: Method, currency: str) -> bool:
        return method in self.methods and currency in self.currencies


@dataclass(frozen=True)
class OrderRef:
    """How the router names an order it created, for query and close.

    Some channels identify an order by more than its number (UnionPay: `merId + orderId +
    txnTime`), so the router passes the creation time it sent, and what the channel returned.
    """

    order_no: str
    """The payment id; an adapter maps it to its channel's order-number rules and back."""
    created_at: datetime
    """The moment the router created the payment (timezone-aware): UnionPay's `txnTime`."""
    channel_trade_no: str | None = None


@dataclass(frozen=True)
class CreateOrder:
    """A payment as the router asks a channel to create it."""

    order_no: str
    """Our order number: the payment id (adapters map it to their channel's rules)."""
    created_at: datetime
    """Timezone-aware; the same value later arrives in `OrderRef.created_at`."""
    amount: int
    currency: str
    method: Method
    description: str
    notify_url: str
    """Where the channel posts its notification: the router's `/v1/notify/{account}`."""
    expires_at: datetime | None = None
    return_url: str | None = None
    client_ip: str | None = None
    payer_id: str | None = None
    auth_code: str | None = None


@dataclass(frozen=True)
class Action:
    """What the merchant shows the buyer next. Mirrors the payment's `action` object."""

    type: ActionType
    qr_code: str | None = None
    url: str | None = None
    fields: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.type}
        for name in ("qr_code", "url", "fields", "params"):
            value = getattr(self, name)
            if value is not None:
                out[name] = dict(value) if isinstance(value, Mapping) else value
        return out


class TradeState(enum.Enum):
    """A channel's trade state, mapped onto what the router needs to know."""

    PENDING = "pending"
    """Created, waiting for the buyer (NOTPAY, USERPAYING, WAIT_BUYER_PAY, respCode 03/04/05)."""
    SUCCEEDED = "succeeded"
    """Paid (SUCCESS, REFUND: a refunded trade was paid first; TRADE_SUCCESS, TRADE_FINISHED)."""
    FAILED = "failed"
    """The buyer's payment failed (PAYERROR)."""
    CLOSED = "closed"
    """Closed or revoked before payment (CLOSED, REVOKED, TRADE_CLOSED)."""
    NOT_FOUND = "not_found"
    """The channel has no such order."""


@dataclass(frozen=True)
class TradeStatus:
    """A channel's view of one order, from a query or a notification."""

    order_no: str
    state: TradeState
    channel_state: str
    """The channel's own word for the state (`NOTPAY`, `TRADE_SUCCESS`, ...), for the audit."""
    channel_trade_no: str | None = None
    amount: int | None = None
    currency: str | None = None
    paid_at: datetime | None = None
    account_id: str | None = None
    """The channel-side merchant id the trade belongs to (`mchid`, `app_id`, `merId`)."""


@dataclass(frozen=True)
class CreateResult:
    """A created order: what to show the buyer, and where it stands."""

    action: Action
    state: TradeState = TradeState.PENDING
    channel_trade_no: str | None = None
    paid_at: datetime | None = None
    amount: int | None = None
    """What the channel's answer says the order is for, when it says (a barcode payment's
    answer does): the router checks it against the payment before believing the answer."""
    currency: str | None = None


@dataclass(frozen=True)
class RefundOrder:
    """A refund as the router asks a channel to make it (and later asks about it)."""

    refund_no: str
    """Our refund number (`out_refund_no`, `out_request_no`, `orderId`): the refund id."""
    created_at: datetime
    """When the router created the refund (timezone-aware): UnionPay's `txnTime`."""
    payment: OrderRef
    amount: int
    """The amount of this refund, minor units."""
    total: int
    """The payment's whole amount, minor units."""
    currency: str
    notify_url: str
    reason: str | None = None


class RefundState(enum.Enum):
    PENDING = "pending"
    """Accepted, not finished (PROCESSING, respCode 03/04/05)."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """The channel gave up (CLOSED, ABNORMAL, a refused refund)."""
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class RefundStatus:
    """A channel's view of one refund, from the refund call, a query or a notification."""

    refund_no: str
    state: RefundState
    channel_state: str
    order_no: str | None = None
    channel_refund_no: str | None = None
    amount: int | None = None
    refunded_at: datetime | None = None


@dataclass(frozen=True)
class Notification:
    """A verified, decoded channel callback: about a payment, or about a refund."""

    notification_id: str
    event_type: str
    """The channel's own event name (`TRANSACTION.SUCCESS`, `trade_status_sync`, ...)."""
    trade: TradeStatus | None = None
    refund: RefundStatus | None = None


@dataclass(frozen=True)
class Acknowledgement:
    """The HTTP answer a channel expects to a callback, in its own format."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


StatementKind = Literal["payment", "refund"]
StatementStatus = Literal["succeeded", "pending", "failed"]


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of a channel's statement of a day, in neutral terms.

    Amounts are positive integers in minor units whatever the line's kind (a channel that
    writes refunds as negative amounts is read into positive ones); `fee` is what the channel
    charges the merchant for this line, negative when a refund gives a fee back.
    """

    kind: StatementKind
    order_no: str
    """The merchant order number the channel holds, mapped back to ours (the payment id)."""
    refund_no: str | None
    """Our refund number for a refund line (the refund id), or the channel portal's own."""
    channel_trade_no: str
    channel_refund_no: str | None
    amount: int
    """The order amount (payment) or the amount asked to be refunded (refund)."""
    settled: int
    """What moves between the channel and the merchant: `amount` less buyer discounts the
    merchant funds (a coupon)."""
    fee: int
    discount: int
    """The merchant-funded part of the amount: `amount - settled`."""
    currency: str
    status: StatementStatus
    time: int
    """When the channel booked the line, UTC epoch milliseconds."""
    raw: str
    """The line as the file wrote it, for the reconciliation report."""


class Channel(Protocol):
    """One configured channel account (for example `wechat_main`)."""

    @property
    def account(self) -> str:
        """The account's name in the routing config."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this account can do."""
        ...

    async def create(self, order: CreateOrder) -> CreateResult:
        """Create the order at the channel. Raises a `ChannelError` on failure."""
        ...

    async def query(self, order: OrderRef) -> TradeStatus:
        """The channel's current view of the order; `NOT_FOUND` if it has none."""
        ...

    async def close(self, order: OrderRef) -> None:
        """Close an unpaid order. Closing an order the channel does not know is not an error."""
        ...

    async def refund(self, refund: RefundOrder) -> RefundStatus:
        """Ask for a refund. Sending the same `refund_no` again must not refund twice (every
        channel dedupes on it), so the router may resend after an unknown outcome."""
        ...

    async def query_refund(self, refund: RefundOrder) -> RefundStatus:
        """The channel's current view of the refund; `NOT_FOUND` if it has none."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and decode a callback. Raises `NotificationRejected`; never does I/O."""
        ...

    def acknowledgement(self, accepted: bool) -> Acknowledgement:
        """The answer the channel expects: accepted, or please retry later."""
        ...

    def statement(self, day: date) -> AsyncIterator[StatementLine]:
        """The channel's statement of `day` (its own day boundary, China time), downloaded,
        verified (hash) and parsed as it streams. Raises `StatementInvalid` (from
        `channels.statement`) when the file's hash or summary disagrees with its lines, at
        the point it is found: a consumer discards whatever it read of a statement that
        raised. A day without any line yields nothing."""


@runtime_checkable
class IdentifiesPayer(Protocol):
    """A channel whose in-app payment needs the buyer's id in the wallet (WeChat's openid),
    learnt by sending the buyer's browser through the wallet's authorisation and back."""

    def payer_authorization_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the buyer's browser; it comes back to `redirect_uri` with a code."""
        ...

    async def payer_id(self, code: str) -> str:
        """The buyer's id for the code the authorisation gave. Raises `ChannelError`."""
        ...
