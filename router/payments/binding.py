"""The Idempotency-Key a create runs under, as the services see it (no request object).

The API's idempotency middleware makes one per keyed POST; the payment and refund services
bind what they create to it as they write it, and the payment service writes the 201 answer
into the key's record in the same Redis round trip as the payment's new status (README
"Performance"). How the answer is rendered stays the API's business: it hands `answer` in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel


@dataclass
class KeyBinding:
    """An idempotency record held by the running request (`token` proves the lease).

    `bound` is the payment or refund created under the key: set by the create that wrote it,
    or, when this request took the key over from an earlier attempt that created one, set
    before the service runs, which then answers about that one instead of creating another.
    `finished` is set by a service that wrote its final answer into the record itself."""

    merchant_id: str
    key: str
    token: str
    answer: Callable[[BaseModel], str]
    """The body the API answers for an object, exactly as a replay must repeat it."""
    bound: str | None = None
    finished: bool = False
