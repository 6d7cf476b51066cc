"""The one place domain errors become HTTP answers: each meaning has its status and type.

    InvalidField     400 invalid_request_error
    NotFound         404 invalid_request_error / resource_missing
    StateConflict    409 invalid_request_error
    RiskDeclined     402 risk_error / risk_declined
    ChannelDeclined  402 channel_error
    ChangeRefused    502 channel_error
    OutcomeUnknown   502 channel_error
    TradeMismatch    502 channel_error / channel_mismatch
    ChannelDown      503 channel_error

The code, message, param and the named payment or refund pass through unchanged.
"""

from __future__ import annotations

from router.domain_errors import (
    ChangeRefused,
    ChannelDeclined,
    ChannelDown,
    ChannelProblem,
    DomainError,
    InvalidField,
    NotFound,
    OutcomeUnknown,
    RiskDeclined,
    StateConflict,
    TradeMismatch,
)
from router.errors import ApiError, ChannelFailed, Conflict, InvalidRequest, RiskRefused

_ANSWERS: dict[type[DomainError], tuple[type[ApiError], int]] = {
    InvalidField: (InvalidRequest, 400),
    NotFound: (ApiError, 404),
    StateConflict: (Conflict, 409),
    RiskDeclined: (RiskRefused, 402),
    ChannelDeclined: (ChannelFailed, 402),
    ChangeRefused: (ChannelFailed, 502),
    OutcomeUnknown: (ChannelFailed, 502),
    TradeMismatch: (ChannelFailed, 502),
    ChannelDown: (ChannelFailed, 503),
    # Fallbacks for a meaning added without its own answer here.
    ChannelProblem: (ChannelFailed, 502),
    DomainError: (InvalidRequest, 400),
}


def api_error(exc: DomainError) -> ApiError:
    """The merchant API's answer to a domain error."""
    cls, status = next(_ANSWERS[k] for k in type(exc).__mro__ if k in _ANSWERS)
    return cls(
        exc.code,
        exc.message,
        param=exc.param,
        status=status,
        payment_id=exc.payment_id,
        refund_id=exc.refund_id,
    )
