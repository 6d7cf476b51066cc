"""The merchant API's request and response shapes; `/openapi.json` is generated from these."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from channels.base import ActionType, Method, Wallet
from router.urls import url_problem

PaymentStatus = Literal["processing", "pending", "succeeded", "failed", "closed"]
PaymentMethod = Literal[Method, "checkout"]
"""A channel's method, or `checkout`: the router's hosted page, which learns the buyer's wallet
from the app it is opened in (docs/checkout.md)."""
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "closed"})

MAX_AMOUNT = 10_000_000_000
"""100 million CNY in fen: far above any single channel's limit, far below float trouble."""

OrderId = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:|*#]+$"),
]


RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: object) -> object:
    # pydantic's lax datetime also reads numbers ("0.5" is 1970-01-01T00:00:00.5Z): a query
    # value must be the RFC 3339 text the API documents.
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "datetime_format", "must be an RFC 3339 date-time such as 2025-06-15T15:06:00Z"
        )
    return value


def _ascii_integer(value: object) -> object:
    # pydantic's lax int also reads "1_0", " 10" and "10.0" from text.
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value):
        return int(value)
    raise PydanticCustomError("int_format", "must be an integer in ASCII digits")


def _integral(value: object) -> object:
    # JSON has one number type: 1999.0 is the integer 1999 to JSON Schema, so to us too.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Amount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT), BeforeValidator(_integral)]
"""An amount in a JSON body: a number with no fraction (`1999` or `1999.0`), not a string or
a boolean."""


def _ip_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is None or getattr(address, "scope_id", None):
        raise PydanticCustomError("ip_address", "must be an IPv4 or IPv6 address")
    return value


IpAddress = Annotated[
    StrictStr,
    Field(max_length=45, json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
    AfterValidator(_ip_address),
]


QueryTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""A date-time query parameter: RFC 3339 text with an offset, nothing else."""
Limit = Annotated[StrictInt, Field(ge=1, le=100), BeforeValidator(_ascii_integer)]
"""A list's page size as a query parameter."""
Cursor = Annotated[StrictStr, Field(max_length=128)]
"""A list's `starting_after`: the id of the last object of the page before."""


def _valid_url(value: str) -> str:
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Url = Annotated[
    StrictStr, Field(max_length=2048, pattern=r"^https?://[^\s]+$"), AfterValidator(_valid_url)
]


METHOD_NEEDS: dict[Method, str] = {"jsapi": "payer_id", "barcode": "auth_code", "h5": "client_ip"}
"""The field each method cannot do without (the payment service refuses its absence)."""
ONLY_FOR_METHOD: dict[str, Method] = {"auth_code": "barcode"}
"""Fields that only one method takes."""


def _method_rules(schema: dict[str, Any]) -> None:
    """The method-specific requirements, as JSON Schema 2020-12 `if`/`then` clauses."""
    rules: list[dict[str, Any]] = [
        {
            "if": {"properties": {"method": {"const": method}}, "required": ["method"]},
            "then": {"required": [field]},
        }
        for method, field in METHOD_NEEDS.items()
    ]
    rules += [
        {"if": {"required": [field]}, "then": {"properties": {"method": {"const": method}}}}
        for field, method in ONLY_FOR_METHOD.items()
    ]
    schema["allOf"] = rules
    schema["examples"] = [
        {"amount": 1999, "merchant_order_id": "A1001", "description": "Demo", "method": "qr"},
        {
            "amount": 1999,
            "merchant_order_id": "A1002",
            "description": "Demo",
            "method": "h5",
            "wallet": "alipay",
            "client_ip": "203.0.113.9",
        },
    ]


class CreatePaymentRequest(BaseModel):
    """`POST /v1/payments`. Methods need their own fields: `jsapi` needs `payer_id`, `barcode`
    needs `auth_code` (and only `barcode` takes it), `h5` needs `client_ip`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_method_rules)

    amount: Amount = Field(description="Integer amount in the currency's minor unit (fen for CNY).")
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    merchant_order_id: OrderId
    description: Annotated[StrictStr, Field(min_length=1, max_length=127)]
    method: PaymentMethod
    wallet: Wallet | None = None
    channel: Annotated[StrictStr, Field(max_length=64)] | None = Field(
        default=None, description="Pin one channel account by its name in the routing config."
    )
    notify_url: Url | None = None
    return_url: Url | None = None
    expires_in: (
        Annotated[StrictInt, Field(ge=60, le=7 * 24 * 3600), BeforeValidator(_integral)] | None
    ) = Field(default=None, description="Seconds until an unpaid payment is closed (default 2 h).")
    client_ip: IpAddress | None = Field(
        default=None, description="The buyer's IP address; required by `h5`."
    )
    payer_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = Field(
        default=None,
        description="The buyer's id in the wallet (WeChat openid, Alipay buyer_id); required by "
        "`jsapi`.",
    )
    auth_code: Annotated[StrictStr, Field(pattern=r"^[0-9]{10,32}$")] | None = Field(
        default=None,
        description="The code on the buyer's phone; required by `barcode`, refused by the others.",
    )
    metadata: dict[StrictStr, StrictStr] = Field(
        default_factory=dict,
        json_schema_extra={
            "maxProperties": 20,
            "propertyNames": {"minLength": 1, "maxLength": 40},
            "additionalProperties": {"type": "string", "maxLength": 500},
        },
    )

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


def _unset(value: object) -> bool:
    return value is None


class Action(BaseModel):
    """What the merchant shows the buyer next; only the members its type uses are present."""

    type: ActionType
    qr_code: str | SkipJsonSchema[None] = Field(default=None, exclude_if=_unset)
    url: str | SkipJsonSchema[None] = Field(default=None, exclude_if=_unset)
    fields: dict[str, str] | SkipJsonSchema[None] = Field(default=None, exclude_if=_unset)
    params: dict[str, str] | SkipJsonSchema[None] = Field(default=None, exclude_if=_unset)


class Failure(BaseModel):
    """Why a payment failed: the channel's own code where it gave one."""

    code: str
    message: str


class RoutingAttempt(BaseModel):
    channel: str
    outcome: Literal["created", "rejected", "unavailable", "unknown", "abandoned"]
    """`abandoned`: a hedged create that the other account answered first, still under way
    when the payment moved on; its order is closed there by the router."""
    ms: int
    code: str | None = None
    hedge: bool = False
    """Sent to this account while the previous attempt was still under way (a hedge)."""


class Routing(BaseModel):
    """How the router chose the channel: the rule and every attempt, in order."""

    rule: str
    attempts: list[RoutingAttempt] = Field(default_factory=list)


class Risk(BaseModel):
    """What the risk rules decided about a payment (docs/risk.md): `block` (refused with
    `402 risk_declined`, never sent to a channel), `flag` (sent, marked for review) or
    `allow`, and the rules that fired, in file order."""

    decision: Literal["allow", "flag", "block"]
    rules: list[str] = Field(default_factory=list)


class Payment(BaseModel):
    """A payment as merchants see it."""

    id: str
    object: Literal["payment"] = "payment"
    merchant_order_id: str
    amount: int
    currency: str
    amount_refunded: int = 0
    method: PaymentMethod
    wallet: Wallet | None = Field(
        default=None, description="Absent while a checkout waits for the buyer's wallet."
    )
    channel: str | None = Field(
        default=None, description="Absent while a checkout waits for the buyer's wallet."
    )
    channel_trade_no: str | None = None
    status: PaymentStatus
    action: Action | None = None
    description: str
    notify_url: str | None = None
    return_url: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    failure: Failure | None = None
    routing: Routing
    risk: Risk | None = Field(
        default=None, description="The risk decision; null on payments made before risk control."
    )
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

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"amount": 500, "merchant_refund_id": "R1001"}, {}]},
    )

    amount: Amount | None = Field(
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
    payment_id: str | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_unset, description="The payment the error is about."
    )
    refund_id: str | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_unset, description="The refund the error is about."
    )


class ErrorResponse(BaseModel):
    """Every error answer's body (`router.errors.ApiError.body`)."""

    error: ErrorBody
