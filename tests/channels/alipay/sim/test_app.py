"""`AlipayChannel` against the Alipay simulator, both on loopback over real HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest

from channels.alipay import AlipayChannel, build, crypto
from channels.alipay.protocol.wire import BEIJING
from channels.alipay.sandbox import SANDBOX_APP_ID
from channels.base import (
    Action,
    CreateOrder,
    Method,
    OrderRef,
    RefundOrder,
    RefundState,
    TradeState,
)
from channels.errors import (
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    NotificationRejected,
)
from tests.channels.alipay.conftest import AlipayReceiver, AlipaySim

BUYER_ID = "2088102146225135"
AUTH_CODE = "286648488111111111"
CONFIRM_CODE = "260000000000000001"
"""Starts with 26: the buyer must enter a password."""


def new_order(
    method: Method = "qr", notify_url: str = "http://127.0.0.1:9/notify", **changes: Any
) -> CreateOrder:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "order_no": f"pay_{secrets.token_hex(10)}",
        "created_at": now,
        "amount": 1999,
        "currency": "CNY",
        "method": method,
        "description": "Sandbox T-shirt",
        "notify_url": notify_url,
        "expires_at": now + timedelta(minutes=30),
        "return_url": "https://merchant.example/back",
        "payer_id": BUYER_ID,
        "auth_code": AUTH_CODE,
        **changes,
    }
    return CreateOrder(**fields)


def ref(order: CreateOrder) -> OrderRef:
    return OrderRef(order.order_no, order.created_at)


def refund_of(order: CreateOrder, amount: int, refund_no: str | None = None) -> RefundOrder:
    return RefundOrder(
        refund_no=refund_no or f"re_{secrets.token_hex(8)}",
        created_at=datetime.now(UTC),
        payment=ref(order),
        amount=amount,
        total=order.amount,
        currency="CNY",
        notify_url=order.notify_url,
    )


def code_of(action: Action) -> str:
    if action.qr_code:
        return action.qr_code
    if action.url:
        return action.url
    params: Mapping[str, str] = action.params or {}
    return params.get("order_string") or params["trade_no"]


async def control(
    session: aiohttp.ClientSession, method: str, url: str, payload: object = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=payload) as response:
        return response.status, await response.json()


async def buyer(
    session: aiohttp.ClientSession, sim: AlipaySim, what: str, code: str
) -> tuple[int, Any]:
    return await control(session, "POST", f"{sim.base_url}/sim/buyer/{what}", {"code": code})


async def set_faults(session: aiohttp.ClientSession, sim: AlipaySim, **faults: object) -> None:
    status, body = await control(session, "PUT", f"{sim.base_url}/sim/faults", faults)
    assert status == 200, body


async def eventually(check: Any, timeout: float = 5.0) -> None:
    """Wait until `await check()` is true (state reached by background timers)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


# Create, per method


@pytest.mark.parametrize(
    ("method", "action_type"),
    [
        ("qr", "qr_code"),
        ("web", "redirect"),
        ("h5", "redirect"),
        ("app", "app_params"),
        ("jsapi", "app_params"),
    ],
)
async def test_create_each_method(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, method: Method, action_type: str
) -> None:
    order = new_order(method)
    result = await alipay_channel.create(order)
    assert result.action.type == action_type
    assert result.state is TradeState.PENDING
    app_key = alipay_simulator.state.default_account().app_public_key
    if method == "qr":
        assert result.action.qr_code is not None
        assert result.action.qr_code.startswith("https://qr.alipay.com/")
    elif method in ("web", "h5"):
        url = result.action.url
        assert url is not None
        assert url.startswith(f"{alipay_simulator.base_url}/gateway.do?")
        params = dict(parse_qsl(url.split("?", 1)[1]))
        assert params["method"] == (
            "alipay.trade.page.pay" if method == "web" else "alipay.trade.wap.pay"
        )
        assert params["return_url"] == "https://merchant.example/back"
        assert crypto.verify_request(app_key, params)
    elif method == "app":
        assert result.action.params is not None
        params = dict(parse_qsl(result.action.params["order_string"]))
        assert params["method"] == "alipay.trade.app.pay"
        assert "return_url" not in params
        assert crypto.verify_request(app_key, params)
    else:
        assert result.action.params is not None
        trade_no = result.action.params["trade_no"]
        assert result.channel_trade_no == trade_no
        status = await alipay_channel.query(ref(order))
        assert status.channel_trade_no == trade_no
        assert status.state is TradeState.PENDING


async def test_page_orders_exist_once_the_buyer_opens_them(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("web")
    result = await alipay_channel.create(order)
    assert result.action.url is not None
    assert (await alipay_channel.query(ref(order))).state is TradeState.NOT_FOUND
    async with http_session.get(result.action.url) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "Sandbox T-shirt" in page
    assert "¥19.99" in page
    status = await alipay_channel.query(ref(order))
    assert status.state is TradeState.PENDING
    assert status.amount == 1999
    # Opening it again (a reload) is the same trade.
    async with http_session.get(result.action.url) as response:
        assert response.status == 200
    status_code, paid = await buyer(http_session, alipay_simulator, "pay", result.action.url)
    assert status_code == 200, paid
    assert paid["trade_status"] == "TRADE_SUCCESS"
    assert (await alipay_channel.query(ref(order))).state is TradeState.SUCCEEDED


async def test_tampered_page_url_shows_an_error_page(
    alipay_channel: AlipayChannel, http_session: aiohttp.ClientSession
) -> None:
    result = await alipay_channel.create(new_order("h5"))
    assert result.action.url is not None
    tampered = result.action.url.replace("total_amount%22%3A%2219.99", "total_amount%22%3A%220.01")
    assert tampered != result.action.url
    async with http_session.get(tampered) as response:
        assert response.status == 400
        assert "invalid-signature" in await response.text()


async def test_app_order_string_is_paid_by_the_buyer(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("app")
    result = await alipay_channel.create(order)
    status, body = await buyer(http_session, alipay_simulator, "pay", code_of(result.action))
    assert status == 200, body
    trade = await alipay_channel.query(ref(order))
    assert trade.state is TradeState.SUCCEEDED
    assert trade.paid_at is not None


# Barcode


async def test_barcode_pays_at_once(alipay_channel: AlipayChannel) -> None:
    order = new_order("barcode")
    result = await alipay_channel.create(order)
    assert result.state is TradeState.SUCCEEDED
    assert result.action.type == "none"
    assert result.channel_trade_no is not None
    assert result.paid_at is not None
    status = await alipay_channel.query(ref(order))
    assert status.state is TradeState.SUCCEEDED
    assert status.channel_trade_no == result.channel_trade_no


async def test_barcode_waiting_for_the_password(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, alipay_simulator, password_entry_ms=None)
    order = new_order("barcode", auth_code=CONFIRM_CODE)
    result = await alipay_channel.create(order)
    assert result.state is TradeState.PENDING
    assert result.channel_trade_no is not None
    assert (await alipay_channel.query(ref(order))).channel_state == "WAIT_BUYER_PAY"
    status, body = await buyer(http_session, alipay_simulator, "pay", CONFIRM_CODE)
    assert status == 200, body
    assert (await alipay_channel.query(ref(order))).state is TradeState.SUCCEEDED


async def test_barcode_password_is_entered_after_a_while(alipay_channel: AlipayChannel) -> None:
    # Default password_entry_ms 10 s, under the tests' time factor 10 ms.
    order = new_order("barcode", auth_code=CONFIRM_CODE)
    assert (await alipay_channel.create(order)).state is TradeState.PENDING

    async def paid() -> bool:
        return (await alipay_channel.query(ref(order))).state is TradeState.SUCCEEDED

    await eventually(paid)


async def test_barcode_declined(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, alipay_simulator, decline_rate=1.0)
    order = new_order("barcode")
    with pytest.raises(ChannelRejected) as caught:
        await alipay_channel.create(order)
    assert caught.value.code == "ACQ.BUYER_BALANCE_NOT_ENOUGH"
    assert caught.value.fault == "buyer"
    assert (await alipay_channel.query(ref(order))).state is TradeState.CLOSED
    with pytest.raises(ChannelRejected) as again:
        await alipay_channel.create(order)
    assert again.value.code == "ACQ.TRADE_HAS_CLOSE"


async def test_bad_auth_code_is_the_buyers_fault(alipay_channel: AlipayChannel) -> None:
    with pytest.raises(ChannelRejected) as caught:
        await alipay_channel.create(new_order("barcode", auth_code="123"))
    assert caught.value.code == "ACQ.PAYMENT_AUTH_CODE_INVALID"
    assert caught.value.fault == "buyer"


# Pay, notify, query


async def test_buyer_pays_and_the_notification_verifies(
    alipay_channel: AlipayChannel,
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    alipay_receiver: AlipayReceiver,
) -> None:
    order = new_order("qr", alipay_receiver.url)
    result = await alipay_channel.create(order)
    status, paid = await buyer(http_session, alipay_simulator, "pay", code_of(result.action))
    assert status == 200, paid
    received = await alipay_receiver.next()
    assert received.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    note = alipay_channel.parse_notification(received.headers, received.body)
    assert note.event_type == "trade_status_sync"
    assert note.trade is not None
    assert note.trade.order_no == order.order_no
    assert note.trade.state is TradeState.SUCCEEDED
    assert note.trade.amount == 1999
    assert note.trade.channel_trade_no == paid["trade_no"]
    assert note.trade.account_id == SANDBOX_APP_ID
    fields = dict(parse_qsl(received.body.decode()))
    assert fields["notify_type"] == "trade_status_sync"
    assert fields["sign_type"] == "RSA2"
    ack = alipay_channel.acknowledgement(True)
    assert (ack.status, ack.body, ack.content_type) == (200, b"success", "text/plain")
    assert alipay_channel.acknowledgement(False).body == b"fail"

    trade = alipay_simulator.state.trades.get(SANDBOX_APP_ID, order.order_no)
    assert trade is not None
    assert [await delivery.wait() for delivery in trade.deliveries] == ["delivered"]
    with pytest.raises(NotificationRejected):
        alipay_channel.parse_notification({}, received.body.replace(b"19.99", b"0.01"))


async def test_notifications_are_retried_until_the_exact_text_success(
    alipay_channel: AlipayChannel,
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    alipay_receiver: AlipayReceiver,
) -> None:
    alipay_receiver.replies = [500, 202]
    order = new_order("qr", alipay_receiver.url)
    result = await alipay_channel.create(order)
    await buyer(http_session, alipay_simulator, "pay", code_of(result.action))
    first, second, third = await alipay_receiver.take(3)
    assert first.body == second.body == third.body, "the same notify_id every time"
    trade = alipay_simulator.state.trades.get(SANDBOX_APP_ID, order.order_no)
    assert trade is not None
    (delivery,) = trade.deliveries
    assert await delivery.wait() == "delivered"
    gaps = [b.at - a.at for a, b in zip(delivery.attempts, delivery.attempts[1:], strict=False)]
    assert gaps[0] >= 0.24, "4 minutes under the time factor"
    assert gaps[1] >= 0.6, "then 10 minutes"
    status, view = await control(
        http_session, "GET", f"{alipay_simulator.base_url}/sim/orders/{order.order_no}"
    )
    assert status == 200
    attempts = view["notifications"][0]["attempts"]
    assert [attempt["status"] for attempt in attempts] == [500, 202, 200]


async def test_notification_faults(
    alipay_channel: AlipayChannel,
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    alipay_receiver: AlipayReceiver,
) -> None:
    await set_faults(
        http_session, alipay_simulator, duplicate_notifications=1, drop_notifications=1
    )
    order = new_order("qr", alipay_receiver.url)
    result = await alipay_channel.create(order)
    await buyer(http_session, alipay_simulator, "pay", code_of(result.action))
    one, two = await alipay_receiver.take(2)
    assert one.body == two.body
    trade = alipay_simulator.state.trades.get(SANDBOX_APP_ID, order.order_no)
    assert trade is not None
    assert [len(d.attempts) for d in trade.deliveries] == [2, 2]


async def test_buyer_declines(
    alipay_channel: AlipayChannel,
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    alipay_receiver: AlipayReceiver,
) -> None:
    order = new_order("qr", alipay_receiver.url)
    result = await alipay_channel.create(order)
    status, body = await buyer(http_session, alipay_simulator, "decline", code_of(result.action))
    assert status == 200, body
    assert body["trade_status"] == "TRADE_CLOSED"
    note = alipay_channel.parse_notification({}, (await alipay_receiver.next()).body)
    assert note.trade is not None
    assert note.trade.state is TradeState.CLOSED
    assert (await alipay_channel.query(ref(order))).state is TradeState.CLOSED
    status, body = await buyer(http_session, alipay_simulator, "pay", code_of(result.action))
    assert status == 409


async def test_auto_pay(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, alipay_simulator, auto_pay_after_ms=1000)
    order = new_order("qr")
    await alipay_channel.create(order)

    async def paid() -> bool:
        return (await alipay_channel.query(ref(order))).state is TradeState.SUCCEEDED

    await eventually(paid)


async def test_unknown_buyer_code(
    alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    status, body = await buyer(http_session, alipay_simulator, "pay", "https://qr.alipay.com/nope")
    assert status == 404
    assert body["error"]["field"] == "code"
    status, _ = await control(
        http_session, "POST", f"{alipay_simulator.base_url}/sim/buyer/pay", {"code": 1}
    )
    assert status == 400


# Repeats


async def test_repeated_create(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("qr")
    first = await alipay_channel.create(order)
    again = await alipay_channel.create(order)
    assert again.action == first.action
    with pytest.raises(ChannelRejected) as caught:
        await alipay_channel.create(new_order("qr", order_no=order.order_no, amount=2000))
    assert caught.value.code == "ACQ.CONTEXT_INCONSISTENT"
    await buyer(http_session, alipay_simulator, "pay", code_of(first.action))
    with pytest.raises(ChannelRejected) as paid:
        await alipay_channel.create(order)
    assert paid.value.code == "ACQ.TRADE_HAS_SUCCESS"
    assert paid.value.fault == "request"


# Close


async def test_close(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("qr")
    result = await alipay_channel.create(order)
    await alipay_channel.close(ref(order))
    await alipay_channel.close(ref(order))
    assert (await alipay_channel.query(ref(order))).state is TradeState.CLOSED
    status, _ = await buyer(http_session, alipay_simulator, "pay", code_of(result.action))
    assert status == 409
    await alipay_channel.close(ref(new_order("web")))

    paid = new_order("barcode")
    await alipay_channel.create(paid)
    with pytest.raises(ChannelRejected) as caught:
        await alipay_channel.close(ref(paid))
    assert caught.value.code == "ACQ.TRADE_STATUS_ERROR"


async def test_expired_trades_close(alipay_channel: AlipayChannel) -> None:
    # Alipay's time_expire has whole seconds: two seconds ahead is always still in the future.
    order = new_order("qr", expires_at=datetime.now(UTC) + timedelta(seconds=2))
    await alipay_channel.create(order)
    assert (await alipay_channel.query(ref(order))).state is TradeState.PENDING
    await asyncio.sleep(2.1)
    assert (await alipay_channel.query(ref(order))).state is TradeState.CLOSED


# Refunds


async def test_refunds(
    alipay_channel: AlipayChannel,
    alipay_simulator: AlipaySim,
    alipay_receiver: AlipayReceiver,
) -> None:
    order = new_order("barcode", alipay_receiver.url)
    await alipay_channel.create(order)
    await alipay_receiver.next()
    trade = alipay_simulator.state.trades.get(SANDBOX_APP_ID, order.order_no)
    assert trade is not None

    first = refund_of(order, 500)
    done = await alipay_channel.refund(first)
    assert done.state is RefundState.SUCCEEDED
    assert done.amount == 500
    assert done.channel_state == "fund_change=Y"
    note = alipay_channel.parse_notification({}, (await alipay_receiver.next()).body)
    assert note.refund is not None
    assert note.refund.refund_no == first.refund_no
    assert note.trade is not None
    assert note.trade.state is TradeState.SUCCEEDED

    repeat = await alipay_channel.refund(first)
    assert repeat.state is RefundState.SUCCEEDED
    assert repeat.amount == 500
    assert trade.refunded == 500, "a resent refund number refunds once"

    with pytest.raises(ChannelRejected) as over:
        await alipay_channel.refund(refund_of(order, 1500))
    assert over.value.code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert over.value.fault == "request"
    with pytest.raises(ChannelRejected) as changed:
        await alipay_channel.refund(refund_of(order, 400, first.refund_no))
    assert changed.value.code == "ACQ.DISCORDANT_REPEAT_REQUEST"

    queried = await alipay_channel.query_refund(first)
    assert queried.state is RefundState.SUCCEEDED
    assert queried.amount == 500
    assert queried.refunded_at is not None
    assert (await alipay_channel.query_refund(refund_of(order, 1))).state is RefundState.NOT_FOUND

    rest = await alipay_channel.refund(refund_of(order, 1499))
    assert rest.state is RefundState.SUCCEEDED
    assert trade.refunded == 1999
    status = await alipay_channel.query(ref(order))
    assert status.channel_state == "TRADE_CLOSED"
    assert status.state is TradeState.SUCCEEDED, "fully refunded, but it was paid"


async def test_refund_of_unknown_or_unpaid_trades(alipay_channel: AlipayChannel) -> None:
    unknown = new_order("qr")
    with pytest.raises(ChannelRejected) as caught:
        await alipay_channel.refund(refund_of(unknown, 100))
    assert caught.value.code == "ACQ.TRADE_NOT_EXIST"
    refund = refund_of(unknown, 100)
    assert (await alipay_channel.query_refund(refund)).state is RefundState.NOT_FOUND
    await alipay_channel.create(unknown)
    with pytest.raises(ChannelRejected) as unpaid:
        await alipay_channel.refund(refund)
    assert unpaid.value.code == "ACQ.TRADE_STATUS_ERROR"


async def test_refund_failure_fault(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("barcode")
    await alipay_channel.create(order)
    await set_faults(http_session, alipay_simulator, refund_fail_rate=1.0)
    refund = refund_of(order, 100)
    with pytest.raises(ChannelRejected) as caught:
        await alipay_channel.refund(refund)
    assert caught.value.code == "ACQ.SELLER_BALANCE_NOT_ENOUGH"
    assert caught.value.fault == "channel"
    assert (await alipay_channel.query_refund(refund)).state is RefundState.NOT_FOUND


# Faults


async def test_outage_is_unavailable(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, alipay_simulator, outage=True)
    order = new_order("qr")
    with pytest.raises(ChannelUnavailable):
        await alipay_channel.create(order)
    await set_faults(http_session, alipay_simulator)
    assert (await alipay_channel.query(ref(order))).state is TradeState.NOT_FOUND


async def test_errors_are_unknown_and_do_nothing(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, alipay_simulator, error_rate=1.0)
    order = new_order("qr")
    with pytest.raises(ChannelOutcomeUnknown) as caught:
        await alipay_channel.create(order)
    assert caught.value.code == "isp.unknow-error"
    await set_faults(http_session, alipay_simulator)
    assert (await alipay_channel.query(ref(order))).state is TradeState.NOT_FOUND


async def test_timeouts_are_unknown_but_done(
    alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    config = alipay_simulator.account_config(timeouts={"connect": 1, "total": 0.3})
    channel = AlipayChannel(
        "alipay_main",
        config,
        alipay_simulator.state.default_account().credentials,
        http_session,
    )
    await set_faults(
        http_session, alipay_simulator, timeout_rate=1.0, hang_ms=5000, only=["create"]
    )
    order = new_order("qr")
    with pytest.raises(ChannelOutcomeUnknown):
        await channel.create(order)
    assert (await channel.query(ref(order))).state is TradeState.PENDING, "queries still answer"


async def test_wrong_keys(
    alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    fixtures = Path(__file__).parents[3] / "fixtures" / "alipay"
    bundle = alipay_simulator.state.default_account().credentials.bundle()
    wrong_app = {**bundle, "app_private_key": (fixtures / "app_private_key.pem").read_text()}
    (tmp_path / "wrong-app.json").write_text(json.dumps(wrong_app))
    config = alipay_simulator.account_config(credentials={"file": "wrong-app.json"})
    channel = build("alipay_main", config, tmp_path, http_session)
    with pytest.raises(ChannelRejected) as caught:
        await channel.query(ref(new_order()))
    assert caught.value.code == "isv.invalid-signature"
    assert caught.value.fault == "channel"
    assert "app_id=2021000000000001&biz_content=" in caught.value.message

    wrong_alipay = {**bundle, "alipay_public_key": (fixtures / "alipay_public_key.pem").read_text()}
    (tmp_path / "wrong-alipay.json").write_text(json.dumps(wrong_alipay))
    config = alipay_simulator.account_config(credentials={"file": "wrong-alipay.json"})
    channel = build("alipay_main", config, tmp_path, http_session)
    with pytest.raises(ChannelOutcomeUnknown) as unknown:
        await channel.create(new_order())
    assert unknown.value.code == "ANSWER_SIGNATURE"


async def test_connection_refused_is_unavailable(
    alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    config = alipay_simulator.account_config(base_url="http://127.0.0.1:9")
    channel = AlipayChannel(
        "alipay_main", config, alipay_simulator.state.default_account().credentials, http_session
    )
    with pytest.raises(ChannelUnavailable):
        await channel.query(ref(new_order()))


# The gateway itself


async def gateway(
    session: aiohttp.ClientSession,
    sim: AlipaySim,
    params: Mapping[str, str],
    *,
    sign: bool = True,
    get: bool = False,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Call `/gateway.do` directly; the answer's member name, object and whole body."""
    if sign:
        params = crypto.sign_request(sim.state.default_account().credentials.app_key, params)
    url = f"{sim.base_url}/gateway.do"
    request = session.get(url, params=dict(params)) if get else session.post(url, data=dict(params))
    async with request as response:
        assert response.status == 200
        raw = await response.read()
    body = json.loads(raw)
    name = next(key for key in body if key.endswith("_response"))
    return name, body[name], body


def common(method: str, biz: Mapping[str, Any] | str) -> dict[str, str]:
    return {
        "app_id": SANDBOX_APP_ID,
        "method": method,
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2024-01-15 10:30:00",
        "version": "1.0",
        "biz_content": biz if isinstance(biz, str) else json.dumps(biz),
    }


@pytest.mark.parametrize(
    ("biz", "sub_code", "names"),
    [
        ({"total_amount": "1.00", "subject": "x"}, "ACQ.INVALID_PARAMETER", "out_trade_no"),
        ({"out_trade_no": "pay_1", "subject": "x"}, "ACQ.INVALID_PARAMETER", "total_amount"),
        ({"out_trade_no": "pay_1", "total_amount": "1.00"}, "ACQ.INVALID_PARAMETER", "subject"),
        (
            {"out_trade_no": "pay_1", "total_amount": "1.001", "subject": "x"},
            "ACQ.INVALID_PARAMETER",
            "total_amount",
        ),
        (
            {"out_trade_no": "pay-1", "total_amount": "1.00", "subject": "x"},
            "ACQ.INVALID_PARAMETER",
            "out_trade_no",
        ),
        (
            {"out_trade_no": "pay_1", "total_amount": "100000000.01", "subject": "x"},
            "ACQ.TOTAL_FEE_EXCEED",
            "",
        ),
        (
            {"out_trade_no": "p", "total_amount": "1", "subject": "x", "time_expire": "soon"},
            "ACQ.INVALID_PARAMETER",
            "time_expire",
        ),
        ("{not json", "ACQ.INVALID_PARAMETER", "biz_content"),
    ],
)
async def test_business_validation(
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    biz: Mapping[str, Any] | str,
    sub_code: str,
    names: str,
) -> None:
    name, reply, body = await gateway(
        http_session, alipay_simulator, common("alipay.trade.precreate", biz)
    )
    assert name == "alipay_trade_precreate_response"
    assert (reply["code"], reply["msg"], reply["sub_code"]) == (
        "40004",
        "Business Failed",
        sub_code,
    )
    assert names in reply["sub_msg"]
    assert "sign" in body, "business failures are signed too"


@pytest.mark.parametrize(
    ("changes", "code", "sub_code", "signed"),
    [
        ({"app_id": ""}, "40001", "isv.missing-app-id", False),
        ({"app_id": "2021000000009999"}, "40002", "isv.invalid-app-id", False),
        ({"method": "alipay.trade.nothing"}, "40002", "isv.invalid-method", True),
        ({"method": ""}, "40001", "isv.missing-method", True),
        ({"sign_type": "RSA"}, "40002", "isv.invalid-signature-type", True),
        ({"timestamp": "15/01/2024"}, "40002", "isv.invalid-timestamp", True),
        ({"charset": "gbk"}, "40002", "isv.invalid-charset", True),
    ],
)
async def test_gateway_errors(
    alipay_simulator: AlipaySim,
    http_session: aiohttp.ClientSession,
    changes: dict[str, str],
    code: str,
    sub_code: str,
    signed: bool,
) -> None:
    params = {**common("alipay.trade.query", {"out_trade_no": "x"}), **changes}
    name, reply, body = await gateway(http_session, alipay_simulator, params)
    assert name == "error_response"
    assert (reply["code"], reply["sub_code"]) == (code, sub_code)
    assert ("sign" in body) is signed


async def test_bad_and_missing_signatures(
    alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    params = common("alipay.trade.query", {"out_trade_no": "x"})
    name, reply, _ = await gateway(http_session, alipay_simulator, params, sign=False)
    assert (name, reply["sub_code"]) == ("error_response", "isv.missing-signature")
    signed = crypto.sign_request(
        alipay_simulator.state.default_account().credentials.app_key, params
    )
    forged = {**signed, "biz_content": json.dumps({"out_trade_no": "y"})}
    name, reply, body = await gateway(http_session, alipay_simulator, forged, sign=False)
    assert (name, reply["code"], reply["sub_code"]) == (
        "error_response",
        "40002",
        "isv.invalid-signature",
    )
    raw = crypto.dump_json(reply).encode()
    assert crypto.rsa2_verify(
        alipay_simulator.state.default_account().credentials.alipay_key, raw, body["sign"]
    )


async def test_get_query_strings_numbers_and_mixed_requests(
    alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    biz = '{"out_trade_no":"pay_num","total_amount":19.99,"subject":"数字金额"}'
    _, reply, _ = await gateway(
        http_session, alipay_simulator, common("alipay.trade.precreate", biz), get=True
    )
    assert reply["code"] == "10000", reply
    _name, reply, _ = await gateway(
        http_session,
        alipay_simulator,
        common("alipay.trade.query", {"out_trade_no": "pay_num"}),
    )
    assert (reply["total_amount"], reply["trade_status"]) == ("19.99", "WAIT_BUYER_PAY")
    # Common parameters in the URL, biz_content in the form (as Alipay's Java SDK sends).
    account = alipay_simulator.state.default_account()
    params = crypto.sign_request(
        account.credentials.app_key, common("alipay.trade.close", {"out_trade_no": "pay_num"})
    )
    biz_content = params.pop("biz_content")
    async with http_session.post(
        f"{alipay_simulator.base_url}/gateway.do", params=params, data={"biz_content": biz_content}
    ) as response:
        body = json.loads(await response.read())
    assert body["alipay_trade_close_response"]["code"] == "10000"


async def test_cancel(alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession) -> None:
    paid = {"out_trade_no": "pay_c1", "total_amount": "5.00", "subject": "x", "scene": "bar_code"}
    paid["auth_code"] = AUTH_CODE
    _, reply, _ = await gateway(http_session, alipay_simulator, common("alipay.trade.pay", paid))
    assert reply["code"] == "10000"
    _, reply, _ = await gateway(
        http_session, alipay_simulator, common("alipay.trade.cancel", {"out_trade_no": "pay_c1"})
    )
    assert (reply["code"], reply["action"], reply["retry_flag"]) == ("10000", "refund", "N")
    _, reply, _ = await gateway(
        http_session, alipay_simulator, common("alipay.trade.query", {"out_trade_no": "pay_c1"})
    )
    assert reply["trade_status"] == "TRADE_CLOSED"


# Control plane and statement


async def test_control_plane(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    status, accounts = await control(
        http_session, "GET", f"{alipay_simulator.base_url}/sim/accounts"
    )
    assert status == 200
    (bundle,) = accounts["accounts"]
    assert set(bundle) == {"app_id", "app_private_key", "alipay_public_key"}
    assert bundle["app_id"] == SANDBOX_APP_ID
    status, _ = await control(http_session, "GET", f"{alipay_simulator.base_url}/sim/orders/none")
    assert status == 404
    order = new_order("qr")
    await alipay_channel.create(order)
    status, view = await control(
        http_session, "GET", f"{alipay_simulator.base_url}/sim/orders/{order.order_no}"
    )
    assert status == 200
    assert view["trade"]["trade_status"] == "WAIT_BUYER_PAY"
    assert view["method"] == "alipay.trade.precreate"
    status, _body = await control(
        http_session, "PUT", f"{alipay_simulator.base_url}/sim/faults", {"error_rate": 2}
    )
    assert status == 400


async def test_statement_of_the_day(
    alipay_channel: AlipayChannel, alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("barcode", amount=4321)
    await alipay_channel.create(order)
    refund = refund_of(order, 1000)
    await alipay_channel.refund(refund)
    today = datetime.now(UTC).astimezone(BEIJING).date().isoformat()
    _, reply, _ = await gateway(
        http_session,
        alipay_simulator,
        common(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": today},
        ),
    )
    assert reply["code"] == "10000", reply
    async with http_session.get(reply["bill_download_url"]) as response:
        assert response.status == 200
        content = await response.read()
    # Alipay names the files in GBK, without the zip's UTF-8 flag.
    with zipfile.ZipFile(io.BytesIO(content), metadata_encoding="gbk") as archive:
        names = archive.namelist()
        (detail_name,) = [name for name in names if name.endswith("_业务明细.csv")]
        detail = archive.read(detail_name).decode("gbk")
    (paid_row,) = [line for line in detail.splitlines() if f",{order.order_no},交易," in line]
    assert ",43.21,43.21," in paid_row
    assert ",-0.26," in paid_row, "0.6% service fee"
    (refund_row,) = [line for line in detail.splitlines() if refund.refund_no in line]
    assert ",-10.00,-10.00," in refund_row
    _, missing, _ = await gateway(
        http_session,
        alipay_simulator,
        common(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": "2001-01-01"},
        ),
    )
    assert missing["sub_code"] == "isp.bill_not_exist"
