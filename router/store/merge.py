"""Newest-first reads over a merchant's indexes in every partition, merged into one order.

A merchant's payments and events are indexed per partition (`router.store.keys`), so a list
reads each partition's index a batch at a time and merges them by (time, id), the order a
single index would give.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis

from router.store.codec import text

BATCH = 50
"""Index entries read from one partition at a time."""


async def newest_first(
    redis: aioredis.Redis, indexes: Sequence[str], high: str, low: str = "-inf"
) -> AsyncGenerator[tuple[int, str]]:
    """(score, member) over every index, highest score first, ties by member descending (as
    ZREVRANGEBYSCORE orders them), scores between `low` and `high` (Redis range syntax)."""
    offsets = [0] * len(indexes)
    pipe = redis.pipeline(transaction=False)
    for index in indexes:
        pipe.zrevrangebyscore(index, high, low, start=0, num=BATCH, withscores=True)
    heap: list[tuple[int, str, int, int]] = []
    buffers: list[list[tuple[int, str]]] = []
    for i, answer in enumerate(await pipe.execute()):
        buffers.append(_pairs(answer))
        offsets[i] = len(buffers[i])
        _push(heap, buffers, i, 0)
    while heap:
        neg_score, _, i, position = heapq.heappop(heap)
        member = buffers[i][position][1]
        yield -neg_score, member
        if position + 1 < len(buffers[i]):
            _push(heap, buffers, i, position + 1)
        elif len(buffers[i]) == BATCH:
            answer = await redis.zrevrangebyscore(
                indexes[i], high, low, start=offsets[i], num=BATCH, withscores=True
            )
            buffers[i] = _pairs(answer)
            offsets[i] += len(buffers[i])
            _push(heap, buffers, i, 0)


def _pairs(answer: Any) -> list[tuple[int, str]]:
    return [(int(score), text(member)) for member, score in cast(list[Any], answer)]


class _Desc(str):
    """A string that sorts backwards, so a min-heap pops the greatest member first."""

    def __lt__(self, other: object) -> bool:
        return str.__gt__(self, cast(str, other))


def _push(heap: list[Any], buffers: list[list[tuple[int, str]]], i: int, position: int) -> None:
    if position < len(buffers[i]):
        score, member = buffers[i][position]
        heapq.heappush(heap, (-score, _Desc(member), i, position))
