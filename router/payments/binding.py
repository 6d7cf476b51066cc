"""The Idempotency-Key a create runs under, as the services see it (no request object).

The API's idempotency middleware makes one per keyed POST; the payment and refund services
record the key with what they create (`router.store.keys`), and the payment service writes
the 201 answer into the key's record in the same Redis round trip as the payment's new status
(README "Performance"). How the answer is rendered stays the API's business: it hands
`answer` in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from router.store.idempotency import IdempotencyKeyLost, IdempotencyStore


@dataclass
class KeyBinding:
    """An idempotency record held by the running request (`token` proves the lease).

    `finished` is set by a service that wrote its final answer into the record itself."""

    merchant_id: str
    key: str
    token: str
    answer: Callable[[BaseModel], str]
    """The body the API answers for an object, exactly as a replay must repeat it."""
    finished: bool = False


async def ensure_held(store: IdempotencyStore, idem: KeyBinding, lease_ms: int) -> None:
    """Before answering about what an earlier attempt made under the key: this request must
    still own the key (it may have stalled past its lease while another attempt took over,
    and that one answers). Raises `IdempotencyKeyLost` otherwise."""
    if not await store.renew(idem.merchant_id, idem.key, idem.token, lease_ms):
        raise IdempotencyKeyLost(idem.key)
