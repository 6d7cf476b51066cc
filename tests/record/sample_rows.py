"""Payment and refund rows as the drainer writes them (the schema's columns), for the ledger
and list tests: written with plain upserts, so the tests do not depend on the drainer."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from router.record.schema import payments, refunds

_SEQ = itertools.count(1)


def payment_row(
    merchant: str = "mch_test0001",
    *,
    amount: int = 1999,
    currency: str = "CNY",
    channel: str = "wechat_main",
    status: str = "succeeded",
    method: str = "qr",
    wallet: str = "wechat",
    created_ms: int = 1_700_000_000_000,
    pay_id: str | None = None,
    order: str | None = None,
) -> dict[str, Any]:
    n = next(_SEQ)
    return {
        "id": pay_id or f"pay_{n:020d}",
        "merchant_id": merchant,
        "version": 3,
        "merchant_order_id": order or f"order-{n}",
        "amount": amount,
        "currency": currency,
        "amount_refunded": 0,
        "method": method,
        "wallet": wallet,
        "channel": channel,
        "channel_trade_no": f"T{n}",
        "status": status,
        "action": None,
        "description": "test",
        "notify_url": None,
        "return_url": None,
        "metadata": {},
        "failure": None,
        "risk": None,
        "routing": {"rule": "default"},
        "livemode": False,
        "created_ms": created_ms,
        "expires_ms": None,
        "paid_ms": created_ms + 1000 if status == "succeeded" else None,
        "updated_ms": created_ms + 1000,
    }


def refund_row(payment: dict[str, Any], amount: int, status: str = "succeeded") -> dict[str, Any]:
    n = next(_SEQ)
    return {
        "id": f"re_{n:020d}",
        "payment_id": payment["id"],
        "merchant_id": payment["merchant_id"],
        "version": 2,
        "amount": amount,
        "currency": payment["currency"],
        "status": status,
        "reason": None,
        "merchant_refund_id": None,
        "channel_refund_no": None,
        "failure": None,
        "livemode": False,
        "created_ms": payment["created_ms"] + 5000,
        "succeeded_ms": payment["created_ms"] + 6000 if status == "succeeded" else None,
        "updated_ms": payment["created_ms"] + 6000,
    }


async def upsert(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert `rows`, or overwrite those already there (the test's stand-in for a drain)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    columns = {c: statement.excluded[c] for c in rows[0] if c != "id"}
    await conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=columns), rows)


async def set_amount(conn: AsyncConnection, pay_id: str, amount: int) -> None:
    await conn.execute(update(payments).where(payments.c.id == pay_id).values(amount=amount))


__all__ = ["payment_row", "payments", "refund_row", "refunds", "set_amount", "upsert"]
