"""payrouter's merchant SDK: one client for the payments API, and webhook verification.

    async with AsyncClient(api_key="sk_test_...", base_url="http://127.0.0.1:8080") as client:
        payment = await client.payments.create(
            amount=1999, merchant_order_id="A1001", description="Demo", method="qr",
            idempotency_key="order-A1001",
        )

`Client` is the same API, blocking. `Webhook(secret).verify(body, headers)` checks a webhook.
"""

from payrouter_sdk._client import AsyncClient, Client, sign_request
from payrouter_sdk._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ChannelError,
    IdempotencyError,
    InvalidRequestError,
    NotFoundError,
    PayrouterError,
    PermissionDeniedError,
    RateLimitError,
    RiskError,
    WebhookVerificationError,
)
from payrouter_sdk._models import (
    Action,
    Delivery,
    DeliveryAttempt,
    Event,
    EventList,
    Failure,
    ListObject,
    Payment,
    PaymentLink,
    PaymentLinkList,
    PaymentList,
    Refund,
    RefundList,
    Risk,
    Routing,
    RoutingAttempt,
    Settlement,
    SettlementLine,
    SettlementLineList,
    SettlementList,
    WebhookEndpoint,
    WebhookEndpointList,
)
from payrouter_sdk._version import __version__
from payrouter_sdk.webhooks import Webhook

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Action",
    "AsyncClient",
    "AuthenticationError",
    "ChannelError",
    "Client",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "EventList",
    "Failure",
    "IdempotencyError",
    "InvalidRequestError",
    "ListObject",
    "NotFoundError",
    "Payment",
    "PaymentLink",
    "PaymentLinkList",
    "PaymentList",
    "PayrouterError",
    "PermissionDeniedError",
    "RateLimitError",
    "Refund",
    "RefundList",
    "Risk",
    "RiskError",
    "Routing",
    "RoutingAttempt",
    "Settlement",
    "SettlementLine",
    "SettlementLineList",
    "SettlementList",
    "Webhook",
    "WebhookEndpoint",
    "WebhookEndpointList",
    "WebhookVerificationError",
    "__version__",
    "sign_request",
]
