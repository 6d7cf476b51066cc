"""Typed views of redis-py answers (the client is built with `decode_responses=True`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def maybe_text(value: Any) -> str | None:
    return None if value is None else text(value)


def mapping(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}
