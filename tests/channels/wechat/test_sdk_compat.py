"""The public `wechatpayv3` client, written for the real API, against the simulator.

Only its host is changed (`wxpay._core._gate_way`); it runs in public-key mode with the bundle
`GET /sim/accounts` hands out. It is synchronous (requests), so it runs in a worker thread
while the simulator serves on this test's event loop.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import secrets
from datetime import datetime
from typing import Any

import aiohttp
from wechatpayv3 import WeChatPay, WeChatPayType

from channels.wechat.protocol.wire import CHINA_TIME
from tests.channels.conftest import Receiver, WeChatSim

NO_PROXY = {"http": None, "https": None}


def make_client(bundle: dict[str, str], base_url: str, notify_url: str) -> Any:
    wxpay = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=bundle["mchid"],
        private_key=bundle["merchant_private_key"],
        cert_serial_no=bundle["merchant_serial_no"],
        appid=bundle["appid"],
        apiv3_key=bundle["apiv3_key"],
        notify_url=notify_url,
        public_key=bundle["platform_public_key"],
        public_key_id=bundle["platform_public_key_id"],
        timeout=(5, 10),
        proxy=NO_PROXY,
    )
    wxpay._core._gate_way = base_url
    return wxpay


async def sim_bundle(session: aiohttp.ClientSession, sim: WeChatSim) -> dict[str, str]:
    async with session.get(f"{sim.base_url}/sim/accounts") as response:
        accounts: list[dict[str, str]] = (await response.json())["accounts"]
    return accounts[0]


async def test_native_pay_query_close_with_the_sdk(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    bundle = await sim_bundle(http_session, wechat_simulator)
    wxpay = make_client(bundle, wechat_simulator.base_url, receiver.url)
    out_trade_no = f"sdk{secrets.token_hex(8)}"

    code, message = await asyncio.to_thread(
        wxpay.pay,
        description="Image形象店-深圳腾大-QQ公仔",
        out_trade_no=out_trade_no,
        amount={"total": 1, "currency": "CNY"},
    )
    assert code == 200, message
    code_url = json.loads(message)["code_url"]
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")

    code, message = await asyncio.to_thread(wxpay.query, out_trade_no=out_trade_no)
    assert code == 200, message
    assert json.loads(message)["trade_state"] == "NOTPAY"

    code, message = await asyncio.to_thread(wxpay.close, out_trade_no=out_trade_no)
    assert code == 204, message

    code, message = await asyncio.to_thread(wxpay.query, out_trade_no=out_trade_no)
    assert json.loads(message)["trade_state"] == "CLOSED"

    code, message = await asyncio.to_thread(wxpay.query, out_trade_no="sdk-never-created")
    assert code == 404
    assert json.loads(message)["code"] == "ORDER_NOT_EXIST"


async def test_sdk_accepts_the_notification_and_reads_the_statement(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    bundle = await sim_bundle(http_session, wechat_simulator)
    wxpay = make_client(bundle, wechat_simulator.base_url, receiver.url)
    out_trade_no = f"sdk{secrets.token_hex(8)}"
    code, message = await asyncio.to_thread(
        wxpay.pay,
        description="Sandbox mug",
        out_trade_no=out_trade_no,
        amount={"total": 4321, "currency": "CNY"},
    )
    assert code == 200, message
    pay_url = f"{wechat_simulator.base_url}/sim/buyer/pay"
    async with http_session.post(pay_url, json={"code": json.loads(message)["code_url"]}) as r:
        transaction_id = (await r.json())["transaction_id"]

    received = await receiver.next()
    result = await asyncio.to_thread(wxpay.callback, dict(received.headers), received.body)
    assert result is not None, "the SDK refused the simulator's notification"
    assert result["event_type"] == "TRANSACTION.SUCCESS"
    assert result["resource"]["out_trade_no"] == out_trade_no
    assert result["resource"]["transaction_id"] == transaction_id
    assert result["resource"]["amount"]["total"] == 4321

    code, message = await asyncio.to_thread(wxpay.query, transaction_id=transaction_id)
    assert code == 200, message
    assert json.loads(message)["out_trade_no"] == out_trade_no

    today = datetime.now(CHINA_TIME).date().isoformat()
    code, message = await asyncio.to_thread(wxpay.trade_bill, bill_date=today)
    assert code == 200, message
    bill = json.loads(message)
    code, content = await asyncio.to_thread(wxpay.download_bill, bill["download_url"])
    assert code == 200
    statement = gzip.decompress(content)
    assert hashlib.sha1(statement, usedforsecurity=False).hexdigest() == bill["hash_value"]
    text = statement.decode()
    assert text.startswith("交易时间,公众账号ID,商户号")
    (row,) = [line for line in text.splitlines() if f"`{out_trade_no}" in line]
    assert f"`{transaction_id}" in row
    assert "`43.21" in row


async def test_sdk_refunds_and_reads_the_refund_notification(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    bundle = await sim_bundle(http_session, wechat_simulator)
    wxpay = make_client(bundle, wechat_simulator.base_url, receiver.url)
    out_trade_no = f"sdk{secrets.token_hex(8)}"
    code, message = await asyncio.to_thread(
        wxpay.pay,
        description="Sandbox mug",
        out_trade_no=out_trade_no,
        amount={"total": 1000, "currency": "CNY"},
    )
    assert code == 200, message
    pay_url = f"{wechat_simulator.base_url}/sim/buyer/pay"
    async with http_session.post(pay_url, json={"code": json.loads(message)["code_url"]}) as r:
        transaction_id = (await r.json())["transaction_id"]
    await receiver.next()  # the payment's notification

    out_refund_no = f"sdkref{secrets.token_hex(6)}"
    code, message = await asyncio.to_thread(
        wxpay.refund,
        out_refund_no=out_refund_no,
        amount={"refund": 400, "total": 1000, "currency": "CNY"},
        transaction_id=transaction_id,
        reason="商品已售完",
    )
    assert code == 200, message
    accepted = json.loads(message)
    assert (accepted["status"], accepted["out_trade_no"]) == ("PROCESSING", out_trade_no)
    assert accepted["amount"]["refund"] == 400

    received = await receiver.next()
    result = await asyncio.to_thread(wxpay.callback, dict(received.headers), received.body)
    assert result is not None, "the SDK refused the simulator's refund notification"
    assert result["event_type"] == "REFUND.SUCCESS"
    resource = result["resource"]
    assert (resource["out_refund_no"], resource["refund_status"]) == (out_refund_no, "SUCCESS")
    assert resource["refund_id"] == accepted["refund_id"]
    assert resource["amount"] == {
        "total": 1000,
        "refund": 400,
        "payer_total": 1000,
        "payer_refund": 400,
    }

    code, message = await asyncio.to_thread(wxpay.query_refund, out_refund_no=out_refund_no)
    assert code == 200, message
    assert json.loads(message)["status"] == "SUCCESS"
    code, message = await asyncio.to_thread(wxpay.query, out_trade_no=out_trade_no)
    assert json.loads(message)["trade_state"] == "REFUND"
    code, message = await asyncio.to_thread(wxpay.query_refund, out_refund_no="sdk-never")
    assert (code, json.loads(message)["code"]) == (404, "RESOURCE_NOT_EXISTS")
