"""A create's risk screen sent in the round trip of its idempotency BEGIN.

The rate-limit middleware (`router.api.limits`) parses a create and builds its screen
(`Prescreen`); the idempotency middleware (`router.api.middleware`) sends it with the BEGIN
(`begin`), and the handler judges the rules on what it found.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from router.risk.control import Pending
from router.runtime import Runtime
from router.store.batch import Batch
from router.store.errors import STORE_UNAVAILABLE
from router.store.idempotency import Begun
from router.store.risk import Screened

log = logging.getLogger("payrouter.http")


@dataclass
class Prescreen:
    """A create's risk screen (`router.api.limits`), built before the idempotency BEGIN so
    that both go in one round trip; `screened` once it was sent."""

    pending: Pending
    screened: Screened | None = None


PRESCREEN = web.RequestKey("prescreen", Prescreen)


async def begin(
    request: web.Request,
    rt: Runtime,
    mch: str,
    key: str,
    fingerprint: str,
    token: str,
    lease_ms: int,
) -> Begun:
    """The idempotency BEGIN, with a create's risk screen in the same round trip.

    Both run whatever the other finds (they live in different slots). A screen that refused
    the create counted nothing, and the request then answers 429 and gives its key up, so a
    retry is not kept waiting by it. A screen beside a request that will not run (a replay,
    a key in use or reused) has its velocity counts taken back; its token stays taken, as
    every request's does."""
    pre = request.get(PRESCREEN)
    if pre is None:
        return await rt.store.idempotency.begin(mch, key, fingerprint, token, lease_ms)
    batch = Batch(rt.store.redis)
    begun_of = rt.store.idempotency.queue_begin(batch, mch, key, fingerprint, token, lease_ms)
    call = pre.pending.call
    indexes = rt.store.risk.queue(batch, call)
    results = await batch.execute()
    begun = begun_of(results)
    pre.screened = call.decode_from(results, indexes)
    taken = pre.screened.taken
    if begun.outcome != "new" and (taken is None or taken.allowed):
        try:
            await rt.store.risk.uncount(call)
        except STORE_UNAVAILABLE as exc:
            # The replay's answer does not depend on it; the counts are one too high.
            log.warning("velocity counts not taken back: %s: %s", type(exc).__name__, exc)
    return begun
