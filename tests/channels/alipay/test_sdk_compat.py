"""The public `python-alipay-sdk` client, written for the real gateway, against the simulator.

Only its gateway is changed (`AliPay._gateway`, which the SDK sets from `debug=` to Alipay's
production or sandbox URL); it signs with the app key `GET /sim/accounts` hands out and checks
every answer's signature over the raw `_response` text with the simulator's Alipay public key
(raising `AliPayValidationError` otherwise). It is synchronous (urllib), so it runs in a worker
thread while the simulator serves on this test's event loop.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from alipay import AliPay
from alipay.exceptions import AliPayValidationError

from tests.channels.alipay.conftest import AlipayReceiver, AlipaySim

FIXTURES = Path(__file__).parents[2] / "fixtures" / "alipay"


def make_client(
    bundle: dict[str, str], base_url: str, notify_url: str, alipay_public_key: str | None = None
) -> Any:
    client = AliPay(
        appid=bundle["app_id"],
        app_notify_url=notify_url,
        app_private_key_string=bundle["app_private_key"],
        alipay_public_key_string=alipay_public_key or bundle["alipay_public_key"],
        sign_type="RSA2",
    )
    client._gateway = f"{base_url}/gateway.do"
    return client


async def sim_bundle(session: aiohttp.ClientSession, sim: AlipaySim) -> dict[str, str]:
    async with session.get(f"{sim.base_url}/sim/accounts") as response:
        accounts: list[dict[str, str]] = (await response.json())["accounts"]
    return accounts[0]


async def test_precreate_query_refund_with_the_sdk(
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    alipay_receiver: AlipayReceiver,
) -> None:
    bundle = await sim_bundle(http_session, alipay_simulator)
    client = make_client(bundle, alipay_simulator.base_url, alipay_receiver.url)
    out_trade_no = f"sdk_{secrets.token_hex(8)}"

    created = await asyncio.to_thread(
        client.api_alipay_trade_precreate,
        subject="沙箱 T恤",
        out_trade_no=out_trade_no,
        total_amount="43.21",
    )
    assert created["code"] == "10000", created
    assert created["out_trade_no"] == out_trade_no
    assert created["qr_code"].startswith("https://qr.alipay.com/")

    queried = await asyncio.to_thread(client.api_alipay_trade_query, out_trade_no=out_trade_no)
    assert (queried["code"], queried["trade_status"]) == ("10000", "WAIT_BUYER_PAY")
    assert queried["total_amount"] == "43.21"

    pay_url = f"{alipay_simulator.base_url}/sim/buyer/pay"
    async with http_session.post(pay_url, json={"code": created["qr_code"]}) as response:
        assert response.status == 200

    received = await alipay_receiver.next()
    fields = dict(parse_qsl(received.body.decode()))
    signature = fields.pop("sign")
    assert await asyncio.to_thread(client.verify, dict(fields), signature), (
        "the SDK refused the simulator's notification"
    )
    assert fields["trade_status"] == "TRADE_SUCCESS"
    assert fields["out_trade_no"] == out_trade_no

    queried = await asyncio.to_thread(client.api_alipay_trade_query, out_trade_no=out_trade_no)
    assert queried["trade_status"] == "TRADE_SUCCESS"
    assert queried["trade_no"] == fields["trade_no"]

    refunded = await asyncio.to_thread(
        client.api_alipay_trade_refund,
        refund_amount="10.00",
        out_trade_no=out_trade_no,
        out_request_no="sdk_refund_1",
    )
    assert (refunded["code"], refunded["fund_change"], refunded["refund_fee"]) == (
        "10000",
        "Y",
        "10.00",
    )
    repeated = await asyncio.to_thread(
        client.api_alipay_trade_refund,
        refund_amount="10.00",
        out_trade_no=out_trade_no,
        out_request_no="sdk_refund_1",
    )
    assert (repeated["fund_change"], repeated["refund_fee"]) == ("N", "10.00")

    refund = await asyncio.to_thread(
        client.api_alipay_trade_fastpay_refund_query,
        out_request_no="sdk_refund_1",
        out_trade_no=out_trade_no,
    )
    assert (refund["refund_status"], refund["refund_amount"]) == ("REFUND_SUCCESS", "10.00")

    # Business failures are signed too: the SDK verifies them and hands them back.
    missing = await asyncio.to_thread(client.api_alipay_trade_query, out_trade_no="sdk_none")
    assert (missing["code"], missing["sub_code"]) == ("40004", "ACQ.TRADE_NOT_EXIST")


async def test_the_sdk_checks_the_signature(
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    alipay_receiver: AlipayReceiver,
) -> None:
    bundle = await sim_bundle(http_session, alipay_simulator)
    other_key = (FIXTURES / "alipay_public_key.pem").read_text()
    client = make_client(bundle, alipay_simulator.base_url, alipay_receiver.url, other_key)
    with pytest.raises(AliPayValidationError):
        await asyncio.to_thread(client.api_alipay_trade_query, out_trade_no="sdk_any")


async def test_page_pay_url_from_the_sdk_opens_the_cashier(
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    alipay_receiver: AlipayReceiver,
) -> None:
    bundle = await sim_bundle(http_session, alipay_simulator)
    client = make_client(bundle, alipay_simulator.base_url, alipay_receiver.url)
    out_trade_no = f"sdk_{secrets.token_hex(8)}"
    order_string = client.api_alipay_trade_page_pay(
        subject="沙箱 马克杯",
        out_trade_no=out_trade_no,
        total_amount="9.90",
        return_url="https://merchant.example/back",
    )
    url = f"{alipay_simulator.base_url}/gateway.do?{order_string}"
    async with http_session.get(url) as response:
        assert response.status == 200, await response.text()
        assert "沙箱 马克杯" in await response.text()
    async with http_session.post(
        f"{alipay_simulator.base_url}/sim/buyer/pay", json={"code": url}
    ) as response:
        assert (await response.json())["trade_status"] == "TRADE_SUCCESS"
    queried = await asyncio.to_thread(client.api_alipay_trade_query, out_trade_no=out_trade_no)
    assert (queried["trade_status"], queried["total_amount"]) == ("TRADE_SUCCESS", "9.90")
