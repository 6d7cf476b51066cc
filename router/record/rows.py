"""Objects ↔ rows: one function each way per kind, so that an object read back from the record
is the object Redis held (every API answer is the same from either).

The Redis side is the hash as the scripts write it (`router.store`: every field JSON but `id`
and `status`, a hidden version `v`); the record keeps whole milliseconds where the API shows
RFC 3339 seconds (`created_ms` → `created_at`), and JSON columns for nested objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from router.clock import from_ms, rfc3339
from router.models import Payment, Refund
from router.store.codec import decode_fields
from router.store.events import StoredEvent
from router.store.payments import StoredPayment
from router.store.refunds import StoredRefund


def _ms(moment: str | None) -> int | None:
    """An API time (RFC 3339) as whole milliseconds."""
    if moment is None:
        return None
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000)


def _at(ms: int | None) -> str | None:
    return None if ms is None else rfc3339(from_ms(ms))


def version_of(raw: Mapping[str, str]) -> int:
    """The hidden version of an object's hash (0 for one written before versions were)."""
    return int(raw.get("v") or 0)


def payment_row(raw: Mapping[str, str], updated_ms: int) -> dict[str, Any]:
    """A payment's row from its Redis hash."""
    v = decode_fields(raw)
    return {
        "id": v["id"],
        "merchant_id": v["merchant_id"],
        "version": version_of(raw),
        "merchant_order_id": v["merchant_order_id"],
        "amount": v["amount"],
        "currency": v["currency"],
        "amount_refunded": v.get("amount_refunded", 0),
        "method": v["method"],
        "wallet": v.get("wallet"),
        "channel": v.get("channel"),
        "channel_trade_no": v.get("channel_trade_no"),
        "status": v["status"],
        "action": v.get("action"),
        "description": v["description"],
        "notify_url": v.get("notify_url"),
        "return_url": v.get("return_url"),
        "metadata": v.get("metadata") or {},
        "failure": v.get("failure"),
        "routing": v["routing"],
        "risk": v.get("risk"),
        "livemode": v["livemode"],
        "created_ms": int(v["created_ms"]),
        "expires_ms": _ms(v.get("expires_at")),
        "paid_ms": _ms(v.get("paid_at")),
        "updated_ms": updated_ms,
    }


def stored_payment(row: Mapping[str, Any]) -> StoredPayment:
    """The payment a row holds, as `router.store.payments` reads it from Redis."""
    payment = Payment(
        id=row["id"],
        merchant_order_id=row["merchant_order_id"],
        amount=row["amount"],
        currency=row["currency"],
        amount_refunded=row["amount_refunded"],
        method=row["method"],
        wallet=row["wallet"],
        channel=row["channel"],
        channel_trade_no=row["channel_trade_no"],
        status=row["status"],
        action=row["action"],
        description=row["description"],
        notify_url=row["notify_url"],
        return_url=row["return_url"],
        metadata=row["metadata"],
        failure=row["failure"],
        routing=row["routing"],
        risk=row["risk"],
        created_at=rfc3339(from_ms(row["created_ms"])),
        expires_at=_at(row["expires_ms"]),
        paid_at=_at(row["paid_ms"]),
        livemode=row["livemode"],
    )
    return StoredPayment(payment, row["merchant_id"], row["created_ms"])


def refund_row(raw: Mapping[str, str], updated_ms: int) -> dict[str, Any]:
    """A refund's row from its Redis hash."""
    v = decode_fields(raw)
    return {
        "id": v["id"],
        "payment_id": v["payment"],
        "merchant_id": v["merchant_id"],
        "version": version_of(raw),
        "amount": v["amount"],
        "currency": v["currency"],
        "status": v["status"],
        "reason": v.get("reason"),
        "merchant_refund_id": v.get("merchant_refund_id"),
        "channel_refund_no": v.get("channel_refund_no"),
        "failure": v.get("failure"),
        "livemode": v["livemode"],
        "created_ms": int(v["created_ms"]),
        "succeeded_ms": _ms(v.get("succeeded_at")),
        "updated_ms": updated_ms,
    }


def stored_refund(row: Mapping[str, Any]) -> StoredRefund:
    """The refund a row holds, as `router.store.refunds` reads it from Redis."""
    refund = Refund(
        id=row["id"],
        payment=row["payment_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=row["status"],
        reason=row["reason"],
        merchant_refund_id=row["merchant_refund_id"],
        channel_refund_no=row["channel_refund_no"],
        failure=row["failure"],
        created_at=rfc3339(from_ms(row["created_ms"])),
        succeeded_at=_at(row["succeeded_ms"]),
        livemode=row["livemode"],
    )
    return StoredRefund(refund, row["merchant_id"], row["created_ms"])


def event_row(raw: Mapping[str, str], updated_ms: int) -> dict[str, Any]:
    """An event's row from its Redis hash (fields as `router.store.scripts._EMIT` writes
    them: plain text but `data`)."""
    return {
        "id": raw["id"],
        "merchant_id": raw["merchant_id"],
        "version": version_of(raw),
        "type": raw["type"],
        "payment_id": raw.get("payment_id"),
        "data": json.loads(raw["data"]),
        "state": raw.get("state", "pending"),
        "attempt_count": int(raw.get("attempt_count") or 0),
        "created_ms": int(raw["created_ms"]),
        "updated_ms": updated_ms,
    }


def stored_event(row: Mapping[str, Any]) -> StoredEvent:
    """The event a row holds, as `router.store.events` reads it from Redis."""
    return StoredEvent(
        id=row["id"],
        merchant_id=row["merchant_id"],
        type=row["type"],
        created_at=rfc3339(from_ms(row["created_ms"])),
        created_ms=row["created_ms"],
        payment_id=row["payment_id"] or "",
        data=row["data"],
        state=row["state"],
        attempt_count=row["attempt_count"],
    )


def attempt_rows(evt_id: str, attempts: list[Any]) -> list[dict[str, Any]]:
    """An event's delivery attempts (the JSON objects its Redis list holds, oldest first) as
    rows numbered from 1; a row that is not an attempt is left out (reported on reads from
    Redis, `router.api.events`)."""
    out = []
    for number, attempt in enumerate(attempts, start=1):
        if not isinstance(attempt, dict) or not isinstance(attempt.get("at"), str):
            continue
        try:
            at_ms = _ms(attempt["at"])
        except ValueError:
            continue
        status = attempt.get("status")
        out.append(
            {
                "event_id": evt_id,
                "number": number,
                "at_ms": at_ms,
                "url": str(attempt.get("url", "")),
                "http_status": status if isinstance(status, int) else None,
                "outcome": "answered" if isinstance(status, int) else "failed",
                "error": attempt.get("error"),
                "duration_ms": attempt.get("ms") if isinstance(attempt.get("ms"), int) else None,
            }
        )
    return out


def attempt_object(row: Mapping[str, Any]) -> dict[str, Any]:
    """An attempt row as the JSON object Redis held (`router.webhooks.dispatcher`)."""
    return {
        "at": rfc3339(from_ms(row["at_ms"])),
        "url": row["url"],
        "status": row["http_status"],
        "ms": row["duration_ms"],
        "error": row["error"],
    }
