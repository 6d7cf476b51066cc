"""The public `wechatpayv3` client reads the simulator's bills as it reads WeChat Pay's: the
trade bill with a refund line and the fund-flow bill, each gzip'd and matching its SHA1; the
fund-flow bill then reads into movements, and a tampered summary is refused."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import secrets
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from channels.statement import StatementInvalid
from channels.wechat.protocol.statement import read_fundflow_bill, text_rows
from channels.wechat.protocol.wire import CHINA_TIME
from tests.channels.conftest import Receiver, WeChatSim
from tests.channels.wechat.test_sdk_compat import make_client, sim_bundle


async def download(wxpay: Any, answer: tuple[int, str]) -> bytes:
    code, message = answer
    assert code == 200, message
    bill = json.loads(message)
    code, content = await asyncio.to_thread(wxpay.download_bill, bill["download_url"])
    assert code == 200
    text = gzip.decompress(content)
    assert hashlib.sha1(text, usedforsecurity=False).hexdigest() == bill["hash_value"]
    return text


def cells(text: bytes) -> list[list[str]]:
    rows = text.decode().splitlines()
    return [[cell.removeprefix("`") for cell in row.split(",")] for row in rows]


async def test_the_sdk_downloads_the_trade_and_fund_flow_bills(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    bundle = await sim_bundle(http_session, wechat_simulator)
    wxpay = make_client(bundle, wechat_simulator.base_url, receiver.url)
    out_trade_no = f"sdk{secrets.token_hex(8)}"
    code, message = await asyncio.to_thread(
        wxpay.pay, description="Mug", out_trade_no=out_trade_no, amount={"total": 10_000}
    )
    assert code == 200, message
    pay_url = f"{wechat_simulator.base_url}/sim/buyer/pay"
    async with http_session.post(pay_url, json={"code": json.loads(message)["code_url"]}) as r:
        assert r.status == 200
    async with http_session.post(
        f"{wechat_simulator.base_url}/sim/statement/portal_refund",
        json={"order_no": out_trade_no, "amount": 2_500},
    ) as r:
        refund = await r.json()
    today = datetime.now(CHINA_TIME).date().isoformat()

    trade = cells(await download(wxpay, await asyncio.to_thread(wxpay.trade_bill, bill_date=today)))
    header = trade[0]
    rows = [dict(zip(header, row, strict=True)) for row in trade[1:-2]]
    assert [(r["交易状态"], r["商户订单号"]) for r in rows] == [
        ("SUCCESS", out_trade_no),
        ("REFUND", out_trade_no),
    ]
    assert (rows[0]["订单金额"], rows[0]["手续费"], rows[0]["费率"]) == (
        "100.00",
        "0.60000",
        "0.60%",
    )
    assert (rows[1]["商户退款单号"], rows[1]["退款金额"]) == (refund["refund_no"], "25.00")
    assert trade[-1][:5] == ["2", "100.00", "25.00", "0.00", "0.45000"]

    flow_file = await download(
        wxpay, await asyncio.to_thread(wxpay.fundflow_bill, bill_date=today, account_type="BASIC")
    )
    flows = cells(flow_file)
    moves = [(row[4], row[5], row[6]) for row in flows[1:-2]]
    assert moves == [
        ("交易", "收入", "100.00"),
        ("扣除交易手续费", "支出", "0.60"),
        ("退款", "支出", "25.00"),
        ("退款手续费返还", "收入", "0.15"),
    ]
    assert flows[-1] == ["4", "2", "100.15", "2", "25.60"]

    read = list(read_fundflow_bill(text_rows(io.BytesIO(flow_file))))
    assert [(flow.kind, flow.amount) for flow in read] == [
        ("交易", 10_000),
        ("扣除交易手续费", -60),
        ("退款", -2_500),
        ("退款手续费返还", 15),
    ]
    assert read[2].business_no == refund["channel_refund_no"]
    tampered = flow_file.replace(b"`25.60", b"`25.61")
    with pytest.raises(StatementInvalid, match="支出金额"):
        list(read_fundflow_bill(text_rows(io.BytesIO(tampered))))
