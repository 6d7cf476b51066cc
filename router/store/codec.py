"""Typed views of redis-py answers (the client is built with `decode_responses=True`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RAW_FIELDS = frozenset({"id", "status"})
"""Hash fields kept as plain strings because Lua scripts compare them; all others are JSON
(an integer's JSON is its digits, so scripts can also HINCRBY amounts)."""


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def maybe_text(value: Any) -> str | None:
    return None if value is None else text(value)


def mapping(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def encode(fields: Mapping[str, Any]) -> list[str]:
    """Flatten fields into the `field, value, ...` list the scripts take."""
    flat: list[str] = []
    for name, value in fields.items():
        flat.append(name)
        flat.append(str(value) if name in RAW_FIELDS else json.dumps(value, ensure_ascii=False))
    return flat


def decode_fields(raw: Mapping[str, str]) -> dict[str, Any]:
    return {k: (v if k in RAW_FIELDS else json.loads(v)) for k, v in raw.items()}
