"""What the `adaptive` strategy keeps in an account's health window beside `ok`/`fail`/`lat`.

Each call adds, in its window bucket, one to a latency histogram bin (`t0`..`t11`) and one to
its dimension's count (`d:<method>.<band>:ok` or `:fail`; the band is the amount's order of
magnitude, see `BANDS`). They travel in the same scripts and round trips as the breaker's own
counts (`router.store.breakers`). Reading them back, `Decayed` weighs each bucket by its age
(halving every `half_life_s`), so evidence fades and an account nobody has called for a
while drifts back towards the prior.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LATENCY_EDGES_MS = (10, 20, 30, 50, 100, 200, 400, 800, 1600, 3200, 6400)
"""Upper edges of the histogram bins; the last bin (`t11`) is everything slower. Fine below
50 ms, where a healthy channel's p95 (and so the hedge delay) lies."""
SLOWEST_MS = 12_800
"""What a call in the last bin counts as."""
BANDS = (1_000, 10_000, 100_000)
"""Amount bands (minor units): below 10 yuan, below 100, below 1000, and above."""


def dimension(method: str, amount: int) -> str:
    """The dimension a payment's calls are counted under: method and amount band."""
    return f"{method}.{bisect.bisect_right(BANDS, amount)}"


def latency_bin(latency_ms: int) -> str:
    """The histogram field a call of `latency_ms` is counted in."""
    return f"t{bisect.bisect_left(LATENCY_EDGES_MS, max(0, latency_ms))}"


def call_fields(outcome: str, latency_ms: int, dim: str | None) -> dict[str, int]:
    """The fields one call adds beside `ok`/`fail`/`lat` (a neutral outcome: none)."""
    if outcome not in ("ok", "fail"):
        return {}
    fields = {latency_bin(latency_ms): 1}
    if dim is not None:
        fields[f"d:{dim}:{outcome}"] = 1
    return fields


@dataclass(frozen=True)
class Decayed:
    """An account's window, each bucket weighed by its age."""

    ok: float
    fail: float
    dim_ok: float
    dim_fail: float
    histogram: tuple[float, ...]

    @property
    def calls(self) -> float:
        """Decayed calls of every dimension."""
        return self.ok + self.fail

    def p95_ms(self) -> float | None:
        """The 95th percentile latency, as the upper edge of its bin (None: no calls)."""
        return self.quantile_ms(0.95)

    def quantile_ms(self, q: float) -> float | None:
        """The `q` quantile of latency, as the upper edge of its bin (None: no calls)."""
        total = sum(self.histogram)
        if total <= 0:
            return None
        edges = (*LATENCY_EDGES_MS, SLOWEST_MS)
        seen = 0.0
        for edge, count in zip(edges, self.histogram, strict=True):
            seen += count
            if seen >= q * total:
                return float(edge)
        return float(SLOWEST_MS)


def decay(
    buckets: Sequence[tuple[int, Mapping[str, int]]],
    *,
    now_bucket: int,
    bucket_s: float,
    half_life_s: float,
    dim: str | None,
    half_calls: float | None = None,
) -> Decayed:
    """Sum the buckets (number, fields), each weighed by 0.5 ** (age / half_life_s) and, with
    `half_calls`, by 0.5 ** (calls in newer buckets / half_calls) as well: newer evidence
    pushes older evidence out, so a busy account is judged on its last calls while one
    nobody calls keeps what it showed, fading only with time."""
    ok = fail = dim_ok = dim_fail = 0.0
    histogram = [0.0] * (len(LATENCY_EDGES_MS) + 1)
    newer = 0
    for number, fields in sorted(buckets, key=lambda b: -b[0]):
        weight = 0.5 ** (max(0, now_bucket - number) * bucket_s / half_life_s)
        if half_calls:
            weight *= 0.5 ** (newer / half_calls)
            newer += fields.get("ok", 0) + fields.get("fail", 0)
        ok += weight * fields.get("ok", 0)
        fail += weight * fields.get("fail", 0)
        if dim is not None:
            dim_ok += weight * fields.get(f"d:{dim}:ok", 0)
            dim_fail += weight * fields.get(f"d:{dim}:fail", 0)
        for index in range(len(histogram)):
            histogram[index] += weight * fields.get(f"t{index}", 0)
    return Decayed(ok, fail, dim_ok, dim_fail, tuple(histogram))
