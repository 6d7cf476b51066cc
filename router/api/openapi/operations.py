"""The merchant API's operations as a table: what each takes and every answer it can give.

To document a new error, add its code under its status in the operations that raise it (or
in `EVERY_OPERATION` / `EVERY_POST` when a middleware raises it); a status the API never gave
before also needs its words in `STATUSES`. `router.api.openapi` turns the table into the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

from router.api.events import (
    Event,
    EventList,
    EventListQuery,
    WebhookEndpoint,
    WebhookEndpointList,
)
from router.api.links import (
    CreateLinkRequest,
    LinkListQuery,
    PaymentLink,
    PaymentLinkList,
)
from router.api.middleware import MAX_BODY
from router.api.payments import ListQuery, RefundListQuery
from router.api.settlements import (
    CSV_COLUMNS,
    LineListQuery,
    Settlement,
    SettlementLineList,
    SettlementList,
    SettlementListQuery,
)
from router.models import (
    CreatePaymentRequest,
    CreateRefundRequest,
    Payment,
    PaymentList,
    Refund,
    RefundList,
)

Codes = Mapping[int, tuple[str, ...]]

STATUSES = {
    400: "Invalid request; `error.param` names the field at fault",
    401: "Authentication failed",
    402: "The channel refused (`channel_error`), or a risk rule blocked the payment "
    "(`risk_error` / `risk_declined`, the rule named in the message); the payment or refund "
    "is `failed` (named in the error)",
    403: "Permission denied",
    404: "No such object",
    409: "Conflict with the object's state or with another request",
    413: f"The request body is over {MAX_BODY // 1024} KiB",
    422: "The Idempotency-Key was used with a different request",
    429: "The merchant's request budget is spent (`rate_limit_error`): retry after "
    "`Retry-After` seconds; nothing was done. Every answer carries `RateLimit-Limit`, "
    "`RateLimit-Remaining` and `RateLimit-Reset`",
    502: "The channel's answer cannot be used. `channel_outcome_unknown`: the payment stays "
    "`processing` until the router has confirmed it with the channel. `channel_mismatch`: the "
    "channel reports another amount or currency than the payment's (or refund's); nothing was "
    "applied and it is held as it was for review: retrying does not help",
    503: "Unavailable now: retry later (after `Retry-After` seconds when given)",
}

AUTH_CODES = (
    "missing_credentials",
    "invalid_authorization",
    "invalid_api_key",
    "api_key_expired",
    "signature_required",
    "missing_signature_header",
    "invalid_timestamp",
    "timestamp_out_of_window",
    "invalid_nonce",
    "invalid_signature",
    "nonce_reused",
)
EVERY_OPERATION: Codes = {
    401: AUTH_CODES,
    403: ("live_key_in_sandbox",),
    413: ("body_too_large",),
    429: ("rate_limited",),
    503: ("store_unavailable",),
}
"""What the middlewares can answer on any merchant route (a signed request's body is read
whatever its method, hence 413 everywhere)."""
EVERY_POST: Codes = {
    400: ("invalid_idempotency_key",),
    409: ("idempotency_key_in_use",),
    422: ("idempotency_key_reused",),
}
"""What the idempotency layer adds to every POST."""
BODY_CODES = ("invalid_json", "parameter_missing", "parameter_invalid", "parameter_unknown")
QUERY_CODES = ("parameter_invalid", "parameter_unknown", "parameter_repeated")
NOT_FOUND: Codes = {404: ("resource_missing",)}
RECORD: Codes = {503: ("record_unavailable",)}
"""Routes that read the record alone (settlements): its database may not answer."""
UNREADABLE_EVENT = "No such event, or its stored record is damaged and cannot be read"


def merged(*tables: Codes) -> dict[int, tuple[str, ...]]:
    """The union of error tables, status by status, codes in order of first mention."""
    out: dict[int, tuple[str, ...]] = {}
    for table in tables:
        for status, codes in table.items():
            out[status] = tuple(dict.fromkeys(out.get(status, ()) + codes))
    return out


@dataclass(frozen=True)
class Operation:
    """One row of the table: what a route takes and every answer it can give."""

    operation_id: str
    method: str
    path: str
    summary: str
    ok: Mapping[int, tuple[type[BaseModel], str]]
    errors: Codes
    id_of: str | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    description: str | None = None
    notes: Mapping[int, str] = field(default_factory=dict)
    """What a status means for this operation, where `STATUSES` says it too generally."""
    csv: str | None = None
    """What the success answer holds as `text/csv` (asked for with `Accept: text/csv`), for
    an operation that can answer in CSV too."""


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "createPayment",
        "post",
        "/v1/payments",
        "Create a payment",
        ok={201: (Payment, "The payment, `pending` with the `action` to show the buyer")},
        body=CreatePaymentRequest,
        errors=merged(
            EVERY_OPERATION,
            EVERY_POST,
            {
                400: (
                    *BODY_CODES,
                    "parameter_unexpected",
                    "notify_url_unsafe",
                    "unknown_channel",
                    "no_channel_available",
                    "channel_mode_mismatch",
                    "wallet_mismatch",
                    "method_unsupported",
                    "currency_unsupported",
                    "wallet_required",
                    "auth_code_wallet_mismatch",
                    "payer_id_invalid",
                ),
                402: ("channel_declined", "payment_failed", "risk_declined"),
                409: ("duplicate_order",),
                502: ("channel_outcome_unknown", "channel_mismatch"),
                503: ("channel_unavailable",),
            },
        ),
    ),
    Operation(
        "listPayments",
        "get",
        "/v1/payments",
        "List payments, newest first",
        ok={200: (PaymentList, "One page of payments")},
        query=ListQuery,
        errors=merged(EVERY_OPERATION, {400: (*QUERY_CODES, "resource_missing")}),
    ),
    Operation(
        "retrievePayment",
        "get",
        "/v1/payments/{id}",
        "Retrieve a payment",
        id_of="payment",
        ok={200: (Payment, "The payment")},
        errors=merged(EVERY_OPERATION, NOT_FOUND),
    ),
    Operation(
        "closePayment",
        "post",
        "/v1/payments/{id}/close",
        "Close an unpaid payment, at the channel too",
        description="A payment already `closed` is answered as it is. If the buyer paid in the "
        "meantime the payment follows the channel and the answer is 409.",
        id_of="payment",
        ok={200: (Payment, "The payment, `closed`")},
        notes={
            502: "`channel_declined`: the channel refused to close the order though the buyer "
            "has not paid. `channel_mismatch`: it refused because the order is paid, but for "
            "another amount or currency. Either way the payment stays `pending`"
        },
        errors=merged(
            EVERY_OPERATION,
            EVERY_POST,
            NOT_FOUND,
            {
                409: ("payment_unexpected_state",),
                502: ("channel_declined", "channel_mismatch"),
                503: ("channel_unavailable",),
            },
        ),
    ),
    Operation(
        "createRefund",
        "post",
        "/v1/payments/{id}/refunds",
        "Refund all or part of a succeeded payment",
        description="Asking again with the same `merchant_refund_id` answers the refund made the "
        "first time (200) instead of refunding twice.",
        id_of="payment",
        ok={
            201: (Refund, "A new refund"),
            200: (Refund, "The refund made before with this `merchant_refund_id`"),
        },
        body=CreateRefundRequest,
        notes={
            402: "The channel refused the refund; the refund is `failed` (`error.refund_id`)",
            502: "The channel answered about the refund with another amount: nothing was "
            "applied and the refund (`error.refund_id`) is held `pending` for review",
            503: "Unavailable now: retry later. With `channel_unavailable` the refund is "
            "`failed` and its amount can be refunded again",
        },
        errors=merged(
            EVERY_OPERATION,
            EVERY_POST,
            NOT_FOUND,
            {
                400: (*BODY_CODES, "partial_refund_unsupported", "refund_exceeds_payment"),
                402: ("channel_declined", "refund_failed"),
                409: ("payment_not_refundable", "duplicate_refund", "merchant_refund_id_reused"),
                502: ("channel_mismatch",),
                503: ("channel_unavailable",),
            },
        ),
    ),
    Operation(
        "listRefunds",
        "get",
        "/v1/payments/{id}/refunds",
        "A payment's refunds, newest first",
        id_of="payment",
        ok={200: (RefundList, "One page of refunds")},
        query=RefundListQuery,
        errors=merged(EVERY_OPERATION, NOT_FOUND, {400: (*QUERY_CODES, "resource_missing")}),
    ),
    Operation(
        "retrieveRefund",
        "get",
        "/v1/refunds/{id}",
        "Retrieve a refund",
        id_of="refund",
        ok={200: (Refund, "The refund")},
        errors=merged(EVERY_OPERATION, NOT_FOUND),
    ),
    Operation(
        "listEvents",
        "get",
        "/v1/events",
        "Webhook events, newest first",
        ok={200: (EventList, "One page of events (without their delivery)")},
        query=EventListQuery,
        errors=merged(EVERY_OPERATION, {400: (*QUERY_CODES, "resource_missing")}),
    ),
    Operation(
        "retrieveEvent",
        "get",
        "/v1/events/{id}",
        "One event with its delivery attempts",
        id_of="event",
        ok={200: (Event, "The event and its delivery")},
        description="Delivery attempts whose stored record cannot be read are left out.",
        notes={404: UNREADABLE_EVENT},
        errors=merged(EVERY_OPERATION, NOT_FOUND),
    ),
    Operation(
        "resendEvent",
        "post",
        "/v1/events/{id}/resend",
        "Deliver the event again, on a fresh retry schedule",
        id_of="event",
        ok={200: (Event, "The event, its delivery pending again")},
        notes={404: UNREADABLE_EVENT},
        errors=merged(EVERY_OPERATION, EVERY_POST, NOT_FOUND),
    ),
    Operation(
        "listDisabledWebhookEndpoints",
        "get",
        "/v1/webhook_endpoints/disabled",
        "Webhook endpoints disabled because they answered 410 Gone",
        ok={200: (WebhookEndpointList, "Every disabled endpoint of the merchant")},
        errors=merged(EVERY_OPERATION),
    ),
    Operation(
        "enableWebhookEndpoint",
        "post",
        "/v1/webhook_endpoints/{id}/enable",
        "Deliver to a disabled webhook endpoint again",
        description="Dead letters from while it was disabled are not sent by this: resend them "
        "with POST /v1/events/{id}/resend.",
        id_of="disabled webhook endpoint",
        ok={200: (WebhookEndpoint, "The endpoint, enabled")},
        errors=merged(EVERY_OPERATION, EVERY_POST, NOT_FOUND),
    ),
    Operation(
        "createPaymentLink",
        "post",
        "/v1/payment_links",
        "Create a payment link (a shop's permanent code)",
        description="Each scan of its `url` is a new `checkout` payment (docs/checkout.md).",
        ok={201: (PaymentLink, "The link, active")},
        body=CreateLinkRequest,
        errors=merged(EVERY_OPERATION, EVERY_POST, {400: BODY_CODES}),
    ),
    Operation(
        "listPaymentLinks",
        "get",
        "/v1/payment_links",
        "List payment links, newest first",
        ok={200: (PaymentLinkList, "The merchant's links")},
        query=LinkListQuery,
        errors=merged(EVERY_OPERATION, {400: QUERY_CODES}),
    ),
    Operation(
        "retrievePaymentLink",
        "get",
        "/v1/payment_links/{id}",
        "Retrieve a payment link",
        id_of="payment link",
        ok={200: (PaymentLink, "The link, with how many payments it made")},
        errors=merged(EVERY_OPERATION, NOT_FOUND),
    ),
    Operation(
        "disablePaymentLink",
        "post",
        "/v1/payment_links/{id}/disable",
        "Disable a payment link: buyers who scan it are told it is no longer in use",
        id_of="payment link",
        ok={200: (PaymentLink, "The link, inactive")},
        errors=merged(EVERY_OPERATION, EVERY_POST, NOT_FOUND),
    ),
    Operation(
        "listSettlements",
        "get",
        "/v1/settlements",
        "Settlements (T+1), newest first",
        description="One per day, currency and mode, made once the day is reconciled; "
        "only the key's mode (test or live) is listed.",
        ok={200: (SettlementList, "One page of settlements")},
        query=SettlementListQuery,
        errors=merged(EVERY_OPERATION, RECORD, {400: (*QUERY_CODES, "resource_missing")}),
    ),
    Operation(
        "retrieveSettlement",
        "get",
        "/v1/settlements/{id}",
        "Retrieve a settlement",
        id_of="settlement",
        ok={200: (Settlement, "The settlement")},
        errors=merged(EVERY_OPERATION, RECORD, NOT_FOUND),
    ),
    Operation(
        "listSettlementLines",
        "get",
        "/v1/settlements/{id}/lines",
        "A settlement's lines: JSON pages, or every line as CSV with `Accept: text/csv`",
        id_of="settlement",
        ok={200: (SettlementLineList, "One page of lines, in order")},
        query=LineListQuery,
        csv="Every line, a header row first: " + ", ".join(CSV_COLUMNS) + " (amounts in "
        "minor units, `booked_at` RFC 3339 UTC); the query parameters do not apply",
        errors=merged(EVERY_OPERATION, RECORD, NOT_FOUND, {400: QUERY_CODES}),
    ),
)
