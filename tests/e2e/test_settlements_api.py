"""`/v1/settlements` through a real router on loopback: lists in the key's mode, newest first
with filters and cursor, another merchant's settlement is 404, the lines as JSON pages and
as streamed CSV, and the SDK reading all of it."""

from __future__ import annotations

import csv
import io
from typing import Any

import payrouter_sdk
from router.api.middleware import RUNTIME
from router.app import RECORD
from router.settle import settle_day
from tests.e2e.conftest import Router
from tests.settle.days import DAY, Run, write_day

OTHER_DAY = "2026-11-27"


async def settled(router: Router) -> dict[str, Any]:
    """Two days of the router's merchant (CNY both days, USD and live mode on DAY) and one
    of another merchant, settled; the merchant's CNY settlement of DAY."""
    record = router.app[RECORD]
    other, _ = await router.app[RUNTIME].store.merchants.create("Other")
    earlier, wechat, alipay = Run("wechat_main"), Run("wechat_main"), Run("alipay_main")
    earlier.pay(router.merchant_id, 500, fee=3)
    big = wechat.pay(router.merchant_id, 10_000, coupon=200, fee=59)
    for n in range(5):
        wechat.pay(router.merchant_id, 100 + n, fee=1)
    wechat.refund(big, 4000, coupon=80, fee=-24)
    alipay.pay(router.merchant_id, 300, currency="USD", fee=2)
    alipay.pay(router.merchant_id, 700, fee=4, livemode=True)
    alipay.pay(other.id, 900, fee=5)
    async with record.engine.begin() as conn:
        await write_day(conn, OTHER_DAY, [earlier])
        await write_day(conn, DAY, [wechat, alipay])
    await settle_day(record, OTHER_DAY, router.clock)
    outcome = await settle_day(record, DAY, router.clock)
    (mine,) = [
        s
        for s in outcome.settlements
        if s["merchant_id"] == router.merchant_id and s["currency"] == "CNY" and not s["livemode"]
    ]
    others = [s for s in outcome.settlements if s["merchant_id"] == other.id]
    live = [s for s in outcome.settlements if s["livemode"]]
    return {"mine": mine, "other": others[0], "live": live[0]}


async def get(router: Router, path: str, **headers: str) -> tuple[int, Any, str]:
    async with router.http.get(router.url + path, headers=router.auth | headers) as resp:
        text = await resp.text()
        return resp.status, text, resp.headers.get("Content-Type", "")


async def test_settlements_list_get_and_lines(router: Router) -> None:
    made = await settled(router)
    mine = made["mine"]

    status, listed, _ = await router.request("GET", "/v1/settlements")
    assert status == 200, listed
    # Test mode only: the live settlement and the other merchant's are not listed.
    days = [(s["day"], s["currency"]) for s in listed["data"]]
    assert sorted(days) == [(OTHER_DAY, "CNY"), (DAY, "CNY"), (DAY, "USD")]
    assert listed["has_more"] is False
    one = next(s for s in listed["data"] if s["id"] == mine["id"])
    assert one["object"] == "settlement"
    assert one["net"] == one["gross"] - one["refunds"] - one["discounts"] - one["fees"]
    assert (one["gross"], one["refunds"], one["discounts"], one["fees"]) == (
        10_000 + 510,
        4000,
        200 - 80,
        59 + 5 - 24,
    )
    assert one["created_at"].endswith("Z")

    status, filtered, _ = await router.request("GET", f"/v1/settlements?day={DAY}&currency=CNY")
    assert [s["id"] for s in filtered["data"]] == [mine["id"]]
    status, first, _ = await router.request("GET", "/v1/settlements?limit=2")
    assert first["has_more"] is True and len(first["data"]) == 2
    after = first["data"][-1]["id"]
    status, rest, _ = await router.request("GET", f"/v1/settlements?limit=2&starting_after={after}")
    assert status == 200 and rest["has_more"] is False
    assert {s["id"] for s in first["data"] + rest["data"]} == {s["id"] for s in listed["data"]}

    status, got, _ = await router.request("GET", f"/v1/settlements/{mine['id']}")
    assert status == 200 and got == one

    for hidden in (made["other"]["id"], made["live"]["id"], "stl_nosuchsettlement"):
        status, body, _ = await router.request("GET", f"/v1/settlements/{hidden}")
        assert (status, body["error"]["code"]) == (404, "resource_missing"), hidden
        status, body, _ = await router.request("GET", f"/v1/settlements/{hidden}/lines")
        assert status == 404
    status, body, _ = await router.request("GET", "/v1/settlements?day=yesterday")
    assert (status, body["error"]["param"]) == (400, "day")
    status, body, _ = await router.request("GET", "/v1/settlements?starting_after=stl_unknown12")
    assert (status, body["error"]["param"]) == (400, "starting_after")

    path = f"/v1/settlements/{mine['id']}/lines"
    status, page, _ = await router.request("GET", f"{path}?limit=4")
    assert status == 200 and page["has_more"] is True
    status, page2, _ = await router.request("GET", f"{path}?limit=4&starting_after=4")
    lines = page["data"] + page2["data"]
    assert [ln["number"] for ln in lines] == list(range(1, 8)) and not page2["has_more"]
    assert sum(ln["net"] for ln in lines) == one["net"]

    status, text, content_type = await get(router, path, Accept="text/csv")
    assert status == 200 and content_type.startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == [
        "kind",
        "payment_id",
        "refund_id",
        "merchant_order_id",
        "account",
        "channel_trade_no",
        "amount",
        "discount",
        "fee",
        "net",
        "booked_at",
    ]
    assert len(table) == 7
    assert sum(int(row["net"]) for row in table) == one["net"]
    refund = next(row for row in table if row["kind"] == "refund")
    assert (refund["amount"], refund["discount"], refund["fee"]) == ("4000", "-80", "-24")
    assert refund["refund_id"].startswith("re_") and refund["booked_at"].endswith("Z")
    assert next(row for row in table if row["kind"] == "payment")["refund_id"] == ""


async def test_the_sdk_reads_settlements(router: Router) -> None:
    mine = (await settled(router))["mine"]
    async with payrouter_sdk.AsyncClient(router.secret, base_url=router.url) as client:
        page = await client.settlements.list(day=DAY, currency="CNY")
        assert [s.id for s in page.data] == [mine["id"]]
        every = [s.id async for s in client.settlements.auto_paging_iter(limit=1)]
        assert len(every) == 3 and mine["id"] in every
        got = await client.settlements.get(mine["id"])
        assert (got.net, got.payment_count, got.refund_count) == (mine["net"], 6, 1)
        lines = await client.settlements.lines(mine["id"])
        assert isinstance(lines, list) and sum(ln.net for ln in lines) == mine["net"]
        text = await client.settlements.lines(mine["id"], csv=True)
        assert isinstance(text, str) and text.startswith("kind,payment_id,")
        assert len(text.strip().splitlines()) == 8
        try:
            await client.settlements.get("stl_nosuchsettlement")
        except payrouter_sdk.NotFoundError:
            pass
        else:
            raise AssertionError("a missing settlement is NotFoundError")
