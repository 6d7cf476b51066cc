"""Errors the merchant API answers with: the HTTP layer's; domain code never imports them.

Domain code (payments, routing, webhooks) raises `router.domain_errors` instead; the API turns
those into these in one place, `router.api.errors.api_error`.

    ApiError(status, type, code, message, param)
    ├── InvalidRequest        400 invalid_request_error (param names the field)
    ├── NotFound              404 invalid_request_error / resource_missing
    ├── Conflict              409 invalid_request_error (duplicate_order, wrong status)
    ├── AuthenticationFailed  401 authentication_error
    ├── PermissionDenied      403 permission_error
    ├── IdempotencyError      409 (in flight) or 422 (different body) idempotency_error
    ├── ChannelFailed         402 / 502 / 503 channel_error (the payment is named)
    ├── RiskRefused           402 risk_error / risk_declined (the payment and rule are named)
    ├── RateLimited           429 rate_limit_error (Retry-After, RateLimit-* headers)
    ├── StoreUnavailable      503 api_error / store_unavailable (Redis unreachable; retry)
    └── InternalError         500 api_error (a bug: logged with the request id)

An error with `retry_after` set is answered with a `Retry-After` header (whole seconds).

Every error leaves the process as `{"error": {"type", "code", "message", "param"}}` through the
error middleware in `router.app`; nothing else is turned into a response there but a 500.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer with its HTTP status and the contract's error object."""

    status = 400
    type = "invalid_request_error"
    retry_after: int | None = None
    """Seconds the client should wait before trying again (`Retry-After`), if it should."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        status: int | None = None,
        payment_id: str | None = None,
        refund_id: str | None = None,
        headers: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.payment_id = payment_id
        self.refund_id = refund_id
        self.headers = headers or {}
        """HTTP headers the answer carries besides the body (`Allow`, `Retry-After`)."""
        if status is not None:
            self.status = status
        if retry_after is not None:
            self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        if self.payment_id is not None:
            error["payment_id"] = self.payment_id
        if self.refund_id is not None:
            error["refund_id"] = self.refund_id
        return {"error": error}


class InvalidRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404

    def __init__(self, what: str, ident: str, *, param: str | None = "id") -> None:
        super().__init__("resource_missing", f"No such {what}: {ident!r}", param=param)


class Conflict(ApiError):
    status = 409


class AuthenticationFailed(ApiError):
    status = 401
    type = "authentication_error"


class PermissionDenied(ApiError):
    status = 403
    type = "permission_error"


class IdempotencyError(ApiError):
    type = "idempotency_error"


class ChannelFailed(ApiError):
    type = "channel_error"


class RiskRefused(ApiError):
    status = 402
    type = "risk_error"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"


class StoreUnavailable(ApiError):
    """The shared store (Redis) cannot be reached: nothing was done, a retry is safe."""

    status = 503
    type = "api_error"
    retry_after = 1


class InternalError(ApiError):
    status = 500
    type = "api_error"
