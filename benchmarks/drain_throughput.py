"""How fast one drainer copies Redis's changes into the record.

    .venv/bin/python benchmarks/drain_throughput.py [--payments 5000] [--database postgres]

Starts a private redis-server (and with `--database postgres` a private PostgreSQL; else the
embedded SQLite in a temporary folder), writes `--payments` paid payments straight into the
store (each: created, pending, succeeded with its event: three changes), then times one
drainer reading and writing them all, batch after batch, as a router does. Prints numbers;
asserts nothing. Compare with the router's create throughput (`payrouter bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness.postgres import start_postgres
from router.clock import Clock, rfc3339
from router.damaged import DamagedRecords
from router.metrics import Metrics
from router.models import Payment, Routing
from router.record import open_record
from router.record.drain import Drainer
from router.settings import Settings
from router.store import Store, open_store
from router.store.payments import PaymentStore, StoredPayment

MCH = "mch_drainbench01"


class StandIn:
    """What the drainer reads of a router's runtime."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = Clock()
        self.settings = Settings()
        self.metrics = Metrics()
        self.damaged = DamagedRecords(self.metrics)


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exe = shutil.which("redis-server") or "redis-server"
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)  # noqa: S603 - our own server
    return proc, f"redis://127.0.0.1:{port}/0"


async def paid(store: Store, clock: Clock, n: int) -> None:
    now = rfc3339(clock.utcnow())
    stored = StoredPayment(
        payment=Payment(
            id=PaymentStore.new_id(MCH, f"O{n}"),
            merchant_order_id=f"O{n}",
            amount=1999,
            currency="CNY",
            method="qr",
            wallet="wechat",
            channel="wechat_main",
            status="processing",
            description="drain bench",
            routing=Routing(rule="default"),
            created_at=now,
            livemode=False,
        ),
        merchant_id=MCH,
        created_ms=clock.now_ms(),
    )
    await store.payments.create(stored, 0)
    await store.payments.transition(stored, "pending", {"channel_trade_no": f"T{n}"})
    await store.payments.transition(stored, "succeeded", {"paid_at": now})
    # As `router.payments.moves.finish_payment` does: a final payment leaves the re-query
    # schedule (else Redis would keep one schedule member per payment ever made).
    await store.schedule.done(MCH, stored.payment.id)


async def main(payments: int, database: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="payrouter-drain-"))
    redis, redis_url = start_redis(folder)
    server = start_postgres() if database == "postgres" else None
    try:
        await asyncio.sleep(0.3)
        store = await open_store(redis_url, Clock())
        url = server.create_database("drain") if server else None
        record = await open_record(url, folder)
        await record.migrate()
        clock = Clock()
        started = time.perf_counter()
        for first in range(0, payments, 20):
            await asyncio.gather(*(paid(store, clock, n) for n in range(first, first + 20)))
        written = time.perf_counter() - started
        changes = await store.changes.reader.length()
        drainer = Drainer(StandIn(store), record)  # type: ignore[arg-type]
        await store.changes.reader.ensure_groups()
        batches, rows = 0, 0
        started, cpu = time.perf_counter(), time.process_time()
        reader = store.changes.reader
        while entries := await reader.read_new(drainer.consumer, drainer.batch, spread=True):
            drained = await drainer.drain(entries)
            batches += 1
            rows += len(drained.payments) + len(drained.events)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"database: {record.description}")
        print(f"written to Redis: {payments} payments, {changes} changes in {written:.2f} s")
        print(
            f"drained: {changes} changes, {rows} rows in {batches} batches of up to "
            f"{drainer.batch}, {took:.2f} s"
        )
        print(f"  {payments / took:,.0f} payments/s, {changes / took:,.0f} changes/s")
        # CPU is steadier than wall time on a shared machine: compare it with the router's
        # CPU per create (`payrouter bench`, "router CPU per payment").
        print(f"  drainer CPU: {cpu * 1000 / payments:.3f} ms per payment (this process only)")
        await record.close()
        await store.close()
    finally:
        redis.terminate()
        redis.wait(timeout=10)
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def parse() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=5000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    asyncio.run(main(args.payments, args.database))
