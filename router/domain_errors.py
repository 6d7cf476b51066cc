"""What went wrong, as the domain (payments, routing, webhooks) says it: meanings, no HTTP.

    DomainError(code, message, param, payment_id, refund_id)
    ├── InvalidField      the request asks for what cannot be done; `param` names the field
    ├── NotFound          no such payment, refund, endpoint... (`param` names the identifier)
    ├── StateConflict     the object's state forbids it now (duplicate order, wrong status)
    ├── RiskDeclined      a risk rule blocked the payment (it is named, failed, never sent)
    └── ChannelProblem    a channel stopped the operation (the payment or refund is named)
        ├── ChannelDeclined   the channel refused: the payment or refund failed for good
        ├── ChangeRefused     the channel refused to change an order it holds; nothing changed
        ├── ChannelDown       no channel can take it now; nothing was done, retry is safe
        ├── OutcomeUnknown    the channel did not say what happened; the router finds out
        └── TradeMismatch     the channel reports another amount or currency; held for review

`code` is the machine-readable reason (`duplicate_order`, `method_unsupported`...). The API
layer alone turns these into HTTP answers (`router.api.errors`); nothing here knows a status.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal or failure of a domain operation, with the reason and what it concerns."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        payment_id: str | None = None,
        refund_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.payment_id = payment_id
        self.refund_id = refund_id


class InvalidField(DomainError):
    """The request asks for something the router cannot do; `param` names the field to fix.
    Nothing was written."""


class NotFound(DomainError):
    """No such object (of this merchant)."""

    def __init__(self, what: str, ident: str, *, param: str | None = "id") -> None:
        super().__init__("resource_missing", f"No such {what}: {ident!r}", param=param)


class StateConflict(DomainError):
    """The object's current state forbids the operation; it may be allowed later or never."""


class RiskDeclined(DomainError):
    """A risk rule blocked the create: the payment was written `failed` and no channel was
    called. The message names the rule."""


class ChannelProblem(DomainError):
    """A channel stopped the operation."""


class ChannelDeclined(ChannelProblem):
    """The channel refused: the payment or refund failed, and a retry fails the same way."""


class ChangeRefused(ChannelProblem):
    """The channel refused to change an order it holds (a close); the payment is unchanged."""


class ChannelDown(ChannelProblem):
    """No channel could take the operation now; nothing was done and a retry is safe."""


class OutcomeUnknown(ChannelProblem):
    """The channel did not say what happened; the payment stays processing until it does."""


class TradeMismatch(ChannelProblem):
    """A channel's report about a payment or refund that names another amount or currency
    than ours: nothing was applied, and the payment or refund is held as it was for review
    (`router.payments.mismatch`). Retrying does not help."""

    def __init__(self, message: str, *, payment_id: str, refund_id: str | None = None) -> None:
        super().__init__("channel_mismatch", message, payment_id=payment_id, refund_id=refund_id)
