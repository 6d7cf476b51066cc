"""Every error the SDK raises, in one tree.

    PayrouterError                 status, type, code, message, param, request_id, headers
    ├── InvalidRequestError        400, 409: the request is wrong (`param` names the field)
    │   └── NotFoundError          404: no such object, or no such URL
    ├── AuthenticationError        401: bad, expired or missing credentials
    ├── PermissionDeniedError      403
    ├── IdempotencyError           409 key still in use, 422 key reused with another request
    ├── RateLimitError             429
    ├── ChannelError               402 / 502 / 503: the channel refused, failed or is unknown
    │   └── RiskError              402 risk_declined: a risk rule blocked the payment
    ├── APIError                   500 and answers that are not the API's error object
    ├── APIConnectionError         no answer: the request may or may not have arrived
    │   └── APITimeoutError
    └── WebhookVerificationError   a webhook whose signature or timestamp does not check out

API errors come from the `{"error": {...}}` body; the class follows `error.type`, so a new
status code with a known type still lands in the right place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from multidict import CIMultiDict

_DELTA_SECONDS = re.compile(r"[0-9]+")
"""RFC 9110 delta-seconds: ASCII digits only (`str.isdigit` would also take `²` and `٣`)."""
_FAR = 2**31
"""The value RFC 9111 gives a delta-seconds too large to represent: 68 years."""


class PayrouterError(Exception):
    """Base of every SDK error. Fields the answer did not carry are None."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.headers: Mapping[str, str] = CIMultiDict(headers or {})
        self.body = body

    def __str__(self) -> str:
        parts = [f"{self.status}" if self.status is not None else None, self.code, self.message]
        text = " ".join(p for p in parts if p)
        if self.param:
            text += f" (param: {self.param})"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return text


class InvalidRequestError(PayrouterError):
    """The request was refused as it stands; `param` names the field, parameter or header."""


class NotFoundError(InvalidRequestError):
    """No such object (`param="id"`), or a URL the router does not serve (`param="path"`)."""


class AuthenticationError(PayrouterError):
    """The API key, signature, timestamp or nonce was refused."""


class PermissionDeniedError(PayrouterError):
    """The credentials are valid but may not do this (a live key on a sandbox, say)."""


class IdempotencyError(PayrouterError):
    """The Idempotency-Key is still in use (409) or was used with another request (422)."""


class RateLimitError(PayrouterError):
    """Too many requests; `retry_after` is the wait the router asked for, if any."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("Retry-After"))


class ChannelError(PayrouterError):
    """The payment channel refused (402), did not answer (502), or is unavailable (503).

    `payment_id` / `refund_id` name the object the router kept: a 502 payment stays
    `processing` until the router settles it with the channel.
    """

    def __init__(
        self,
        message: str,
        *,
        payment_id: str | None = None,
        refund_id: str | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message, **fields)
        self.payment_id = payment_id
        self.refund_id = refund_id


class RiskError(ChannelError):
    """A risk rule of the router blocked the payment (`402 risk_declined`; the message names
    the rule). `payment_id` names the payment, kept `failed`; it was never sent to a channel.
    Retrying does not help."""


class APIError(PayrouterError):
    """The router failed (500), or answered with something that is not the API's error."""


class APIConnectionError(PayrouterError):
    """No answer arrived (refused, reset, DNS): the request may or may not have been handled."""


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout."""


class WebhookVerificationError(PayrouterError):
    """A webhook failed verification; the message says why. Answer it with a 400."""


_BY_TYPE: dict[str, type[PayrouterError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "idempotency_error": IdempotencyError,
    "rate_limit_error": RateLimitError,
    "channel_error": ChannelError,
    "risk_error": RiskError,
    "api_error": APIError,
}
_BY_STATUS: dict[int, type[PayrouterError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def error_from_response(status: int, raw: bytes, headers: Mapping[str, str]) -> PayrouterError:
    """The typed error for a 4xx/5xx answer, whatever its body holds: HTML, truncated or
    non-JSON text, JSON that is not an object, fields of the wrong types."""
    request_id = _text(headers.get("X-Request-Id"))
    body = _json(raw)
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(error, dict) or not isinstance(message, str):
        cls = _BY_STATUS.get(status, APIError)
        text = raw[:200].decode("utf-8", "replace").strip() or "no body"
        return cls(
            f"HTTP {status} without an API error body: {text}",
            status=status,
            request_id=request_id,
            headers=headers,
            body=raw.decode("utf-8", "replace"),
        )
    type_ = _text(error.get("type"))
    cls = _BY_TYPE.get(type_ or "", _BY_STATUS.get(status, APIError))
    if cls is InvalidRequestError and status == 404:
        cls = NotFoundError
    fields: dict[str, Any] = {
        "status": status,
        "type": type_,
        "code": _text(error.get("code")),
        "param": _text(error.get("param")),
        "request_id": request_id,
        "headers": headers,
        "body": body,
    }
    if issubclass(cls, ChannelError):
        fields["payment_id"] = _text(error.get("payment_id"))
        fields["refund_id"] = _text(error.get("refund_id"))
    return cls(message, **fields)


def _json(raw: bytes) -> Any:
    """`raw` as JSON; None when it is not JSON (invalid UTF-8, truncated, nested deeper than
    the parser goes, a number too long to read)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _text(value: object) -> str | None:
    # A field of another type than the API's is treated as absent, not shown as a repr.
    return value if isinstance(value, str) else None


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds as RFC 9110 defines it: delta-seconds (ASCII digits) or an
    HTTP-date. None when absent or anything else (`1.5`, `-1`, `inf`, `nan`, `1e9`, `１２`);
    never negative, never infinite."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        digits = value.lstrip("0") or "0"
        # Past ten digits the exact number does not matter (int() of thousands of them
        # raises): any such wait is longer than a client would make.
        return float(min(int(digits), _FAR)) if len(digits) <= 10 else float(_FAR)
    if not value.isascii():
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max(0.0, (moment - datetime.now(UTC)).total_seconds()), _FAR)
