"""The merchant API's request and response shapes; `/openapi.json` is generated from these."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    StrictStr,
    field_validator,
    model_serializer,
)

from channels.base import ActionType, Method, Wallet
from router.urls import url_problem

PaymentStatus = Literal["processing", "pending", "succeeded", "failed", "closed"]
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "closed"})

MAX_AMOUNT = 10_000_000_000
"""100 million CNY in fen: far above any single channel's limit, far below float trouble."""

OrderId = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:|*#]+$"),
]


def _valid_url(value: str) -> str:
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Url = Annotated[
    StrictStr, Field(max_length=2048, pattern=r"^https?://[^\s]+$"), AfterValidator(_valid_url)
]


class CreatePaymentRequest(BaseModel):
    """`POST /v1/payments`."""

    model_config = ConfigDict(extra="forbid")

    amount: Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT)] = Field(
        description="Integer amount in the currency's minor unit (fen for CNY)."
    )
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    merchant_order_id: OrderId
    description: Annotated[StrictStr, Field(min_length=1, max_length=127)]
    method: Method
    wallet: Wallet | None = None
    channel: Annotated[StrictStr, Field(max_length=64)] | None = Field(
        default=None, description="Pin one channel account by its name in the routing config."
    )
    notify_url: Url | None = None
    return_url: Url | None = None
    expires_in: Annotated[StrictInt, Field(ge=60, le=7 * 24 * 3600)] | None = Field(
        default=None, description="Seconds until an unpaid payment is closed (default 2 h)."
    )
    client_ip: Annotated[StrictStr, Field(max_length=45, pattern=r"^[0-9a-fA-F.:]+$")] | None = None
    payer_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="The buyer's id in the wallet (openid, buyer_id); jsapi only."
    )
    auth_code: Annotated[StrictStr, Field(pattern=r"^[0-9]{10,32}$")] | None = Field(
        default=None, description="The code on the buyer's phone; barcode only."
    )
    metadata: dict[StrictStr, StrictStr] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 20:
            raise ValueError("at most 20 keys")
        for key, item in value.items():
            if not 1 <= len(key) <= 40:
                raise ValueError(f"key {key[:40]!r} must be 1 to 40 characters")
            if len(item) > 500:
                raise ValueError(f"value of {key!r} must be at most 500 characters")
        return value


class Action(BaseModel):
    """What the merchant shows the buyer next; only the members its type uses are present."""

    type: ActionType
    qr_code: str | None = None
    url: str | None = None
    fields: dict[str, str] | None = None
    params: dict[str, str] | None = None

    @model_serializer(mode="wrap")
    def _drop_unused(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class Failure(BaseModel):
    """Why a payment failed: the channel's own code where it gave one."""

    code: str
    message: str


class RoutingAttempt(BaseModel):
    channel: str
    outcome: Literal["created", "rejected", "unavailable", "unknown"]
    ms: int
    code: str | None = None


class Routing(BaseModel):
    """How the router chose the channel: the rule and every attempt, in order."""

    rule: str
    attempts: list[RoutingAttempt] = Field(default_factory=list)


class Payment(BaseModel):
    """A payment as merchants see it."""

    id: str
    object: Literal["payment"] = "payment"
    merchant_order_id: str
    amount: int
    currency: str
    amount_refunded: int = 0
    method: Method
    wallet: Wallet
    channel: str
    channel_trade_no: str | None = None
    status: PaymentStatus
    action: Action | None = None
    description: str
    notify_url: str | None = None
    return_url: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    failure: Failure | None = None
    routing: Routing
    created_at: str
    expires_at: str | None = None
    paid_at: str | None = None
    livemode: bool


class PaymentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Payment]
    has_more: bool
    url: str = "/v1/payments"


RefundStatusName = Literal["pending", "succeeded", "failed"]


class CreateRefundRequest(BaseModel):
    """`POST /v1/payments/{id}/refunds`."""

    model_config = ConfigDict(extra="forbid")

    amount: Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT)] | None = Field(
        default=None, description="Minor units; absent: everything not yet refunded."
    )
    reason: Annotated[StrictStr, Field(min_length=1, max_length=80)] | None = None
    merchant_refund_id: OrderId | None = Field(
        default=None,
        description="The merchant's own id for this refund: asking again with it returns "
        "the same refund instead of refunding twice.",
    )


class Refund(BaseModel):
    """A refund of all or part of a payment."""

    id: str
    object: Literal["refund"] = "refund"
    payment: str
    amount: int
    currency: str
    status: RefundStatusName
    reason: str | None = None
    merchant_refund_id: str | None = None
    channel_refund_no: str | None = None
    failure: Failure | None = None
    created_at: str
    succeeded_at: str | None = None
    livemode: bool


class RefundList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Refund]
    has_more: bool
    url: str


class ErrorBody(BaseModel):
    type: Literal[
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "idempotency_error",
        "rate_limit_error",
        "channel_error",
        "api_error",
    ]
    code: str
    message: str
    param: str | None = None
    payment_id: str | None = None
    refund_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
