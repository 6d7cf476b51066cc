"""A settlement as merchants see it: in the API (`router.api.settlements`) and as the data
of its `settlement.created` event, the same object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.clock import from_ms, rfc3339

FIGURES = ("gross", "refunds", "discounts", "fees", "net", "payment_count", "refund_count")


def settlement_object(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `settlements` row as the public object (amounts in minor units)."""
    return {
        "id": row["id"],
        "object": "settlement",
        "day": row["day"],
        "currency": row["currency"],
        "livemode": bool(row["livemode"]),
        **{name: int(row[name]) for name in FIGURES},
        "created_at": rfc3339(from_ms(int(row["created_ms"]))),
    }
