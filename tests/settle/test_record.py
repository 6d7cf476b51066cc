"""The settlement rows in the record, on both databases: lines are read back in order a
chunk at a time (the CSV streams them so), and a settlement is written once."""

from __future__ import annotations

from router.clock import FrozenClock
from router.record import Record
from router.record import settlements as rows
from router.settle import settle_day
from tests.settle.days import DAY, Run, write_day


async def test_lines_come_in_chunks_and_a_day_is_written_once(migrated: Record) -> None:
    run = Run("wechat_main")
    for n in range(7):
        run.pay("mch_chunkedshop1", 100 + n, fee=1)
    async with migrated.engine.begin() as conn:
        await write_day(conn, DAY, [run])
    clock = FrozenClock()
    (made,) = (await settle_day(migrated, DAY, clock)).settlements

    async with rows.reading(migrated) as conn:
        chunks = [chunk async for chunk in rows.all_lines(conn, made["id"], chunk=3)]
        row = await rows.find(conn, "mch_chunkedshop1", DAY, "CNY", False)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [line["number"] for c in chunks for line in c] == list(range(1, 8))
    assert [line["amount"] for c in chunks for line in c] == [100 + n for n in range(7)]
    assert row is not None and row["id"] == made["id"]

    async with migrated.engine.begin() as conn:
        # A second writer that missed the first one's settlement: refused, nothing written.
        assert not await rows.write(conn, row | {"id": "stl_secondwriter01"}, [])
    async with rows.reading(migrated) as conn:
        assert [r["id"] for r in await rows.of_day(conn, DAY)] == [made["id"]]
