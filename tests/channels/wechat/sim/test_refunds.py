"""WeChat refunds and payment-code payments: `WeChatChannel` against the simulator on loopback."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest

from channels.base import CreateOrder, RefundState, RefundStatus, TradeState
from channels.errors import ChannelOutcomeUnknown, ChannelRejected, ChannelUnavailable
from channels.wechat import WeChatChannel
from tests.channels.conftest import Receiver, WeChatSim
from tests.channels.wechat.support import (
    PASSWORD_AUTH_CODE,
    buyer,
    control,
    eventually,
    new_order,
    ref,
    refund_of,
    set_faults,
)


async def paid_order(
    channel: WeChatChannel,
    sim: WeChatSim,
    session: aiohttp.ClientSession,
    amount: int = 1999,
) -> CreateOrder:
    order = new_order("qr", amount=amount)
    result = await channel.create(order)
    assert result.action.qr_code is not None
    status, body = await buyer(session, sim, "pay", result.action.qr_code)
    assert (status, body["trade_state"]) == (200, "SUCCESS"), body
    return order


def finished(status: RefundStatus) -> bool:
    return status.state is not RefundState.PENDING


# Refunds


async def test_full_refund_succeeds_and_notifies(
    wechat_channel: WeChatChannel,
    wechat_simulator: WeChatSim,
    http_session: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    order = await paid_order(wechat_channel, wechat_simulator, http_session)
    refund = refund_of(order, notify_url=receiver.url)
    accepted = await wechat_channel.refund(refund)
    assert (accepted.state, accepted.channel_state) == (RefundState.PENDING, "PROCESSING")
    assert (accepted.refund_no, accepted.order_no) == (refund.refund_no, order.order_no)
    assert accepted.amount == order.amount
    assert accepted.channel_refund_no is not None
    assert accepted.channel_refund_no.startswith("50")
    assert accepted.refunded_at is None

    received = await receiver.next()
    notification = wechat_channel.parse_notification(received.headers, received.body)
    assert (notification.event_type, notification.trade) == ("REFUND.SUCCESS", None)
    notified = notification.refund
    assert notified is not None
    assert (notified.refund_no, notified.state) == (refund.refund_no, RefundState.SUCCEEDED)
    assert notified.channel_refund_no == accepted.channel_refund_no
    assert notified.amount == order.amount
    assert notified.refunded_at is not None

    queried = await wechat_channel.query_refund(refund)
    assert (queried.state, queried.refunded_at) == (RefundState.SUCCEEDED, notified.refunded_at)
    trade = await wechat_channel.query(ref(order))
    assert (trade.state, trade.channel_state) == (TradeState.SUCCEEDED, "REFUND")


async def test_partial_refunds_never_exceed_the_total(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    order = await paid_order(wechat_channel, wechat_simulator, http_session, amount=1000)
    await wechat_channel.refund(refund_of(order, 300))
    await wechat_channel.refund(refund_of(order, 600))
    with pytest.raises(ChannelRejected) as caught:
        await wechat_channel.refund(refund_of(order, 101))
    assert (caught.value.code, caught.value.fault) == ("INVALID_REQUEST", "request")
    assert "可退金额" in caught.value.message
    last = await wechat_channel.refund(refund_of(order, 100))
    assert last.amount == 100
    status, view = await control(
        http_session, "GET", f"{wechat_simulator.base_url}/sim/orders/{order.order_no}"
    )
    assert status == 200
    assert len(view["refunds"]) == 3
    assert view["order"]["trade_state"] == "REFUND"


async def test_the_same_refund_number_refunds_once(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    order = await paid_order(wechat_channel, wechat_simulator, http_session)
    refund = refund_of(order, 1500)
    first = await wechat_channel.refund(refund)
    again = await wechat_channel.refund(refund)
    assert again.channel_refund_no == first.channel_refund_no
    # Only one refund was made: the rest of the order can still be refunded.
    await wechat_channel.refund(refund_of(order, 499))
    with pytest.raises(ChannelRejected) as changed:
        await wechat_channel.refund(replace(refund, amount=1000))
    assert changed.value.code == "INVALID_REQUEST"
    other = await paid_order(wechat_channel, wechat_simulator, http_session)
    with pytest.raises(ChannelRejected) as reused:
        await wechat_channel.refund(replace(refund_of(other, 1500), refund_no=refund.refund_no))
    assert reused.value.code == "INVALID_REQUEST"


async def test_refunds_need_a_paid_order_and_its_total(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    unpaid = new_order("qr")
    await wechat_channel.create(unpaid)
    for order in (unpaid, new_order("qr")):
        with pytest.raises(ChannelRejected) as caught:
            await wechat_channel.refund(refund_of(order))
        assert (caught.value.code, caught.value.fault) == ("RESOURCE_NOT_EXISTS", "request")
    paid = await paid_order(wechat_channel, wechat_simulator, http_session)
    with pytest.raises(ChannelRejected) as wrong_total:
        await wechat_channel.refund(replace(refund_of(paid, 100), total=paid.amount + 1))
    assert wrong_total.value.code == "INVALID_REQUEST"
    with pytest.raises(ChannelRejected) as long_reason:
        await wechat_channel.refund(refund_of(paid, 100, reason="x" * 81))
    assert (long_reason.value.code, long_reason.value.fault) == ("PARAM_ERROR", "request")


async def test_at_most_fifty_refunds_an_order(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    order = await paid_order(wechat_channel, wechat_simulator, http_session, amount=60)
    for _ in range(50):
        await wechat_channel.refund(refund_of(order, 1))
    with pytest.raises(ChannelRejected, match="50"):
        await wechat_channel.refund(refund_of(order, 1))


async def test_query_refund(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    order = await paid_order(wechat_channel, wechat_simulator, http_session)
    unknown = await wechat_channel.query_refund(refund_of(order))
    assert (unknown.state, unknown.channel_state) == (RefundState.NOT_FOUND, "RESOURCE_NOT_EXISTS")

    await set_faults(http_session, wechat_simulator, refund_delay_ms=600_000)
    refund = refund_of(order, 999)
    await wechat_channel.refund(refund)
    processing = await wechat_channel.query_refund(refund)
    assert (processing.state, processing.channel_state) == (RefundState.PENDING, "PROCESSING")
    assert processing.amount == 999

    status, view = await control(
        http_session, "GET", f"{wechat_simulator.base_url}/sim/refunds/{refund.refund_no}"
    )
    assert status == 200
    assert view["refund"]["status"] == "PROCESSING"
    assert view["refund"]["amount"] == {
        "total": 1999,
        "refund": 999,
        "from": [],
        "payer_total": 1999,
        "payer_refund": 999,
        "settlement_refund": 999,
        "settlement_total": 1999,
        "discount_refund": 0,
        "currency": "CNY",
        "refund_fee": 0,
    }
    assert view["reason"] == "Sandbox refund"
    status, _ = await control(http_session, "GET", f"{wechat_simulator.base_url}/sim/refunds/x")
    assert status == 404


async def test_abnormal_refund(
    wechat_channel: WeChatChannel,
    wechat_simulator: WeChatSim,
    http_session: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    order = await paid_order(wechat_channel, wechat_simulator, http_session)
    await set_faults(http_session, wechat_simulator, refund_fail_rate=1)
    refund = refund_of(order, notify_url=receiver.url)
    await wechat_channel.refund(refund)
    received = await receiver.next()
    notification = wechat_channel.parse_notification(received.headers, received.body)
    assert notification.event_type == "REFUND.ABNORMAL"
    assert notification.refund is not None
    assert notification.refund.state is RefundState.FAILED
    queried = await wechat_channel.query_refund(refund)
    assert (queried.state, queried.channel_state) == (RefundState.FAILED, "ABNORMAL")


async def test_refund_faults(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    order = await paid_order(wechat_channel, wechat_simulator, http_session)
    refund = refund_of(order)
    await set_faults(http_session, wechat_simulator, outage=True)
    with pytest.raises(ChannelUnavailable):
        await wechat_channel.refund(refund)
    await set_faults(http_session, wechat_simulator, error_rate=1)
    with pytest.raises(ChannelOutcomeUnknown) as caught:
        await wechat_channel.query_refund(refund)
    assert caught.value.code == "SYSTEM_ERROR"
    await set_faults(http_session, wechat_simulator)
    assert (await wechat_channel.query_refund(refund)).state is RefundState.NOT_FOUND


# Payment codes


async def test_password_payment_waits_for_the_buyer(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, wechat_simulator, password_entry_ms=None)
    order = new_order("barcode", auth_code=PASSWORD_AUTH_CODE)
    result = await wechat_channel.create(order)
    assert (result.action.type, result.state) == ("none", TradeState.PENDING)
    assert result.channel_trade_no is None
    waiting = await wechat_channel.query(ref(order))
    assert (waiting.state, waiting.channel_state) == (TradeState.PENDING, "USERPAYING")
    again = await wechat_channel.create(order)
    assert again.state is TradeState.PENDING

    status, body = await buyer(http_session, wechat_simulator, "pay", PASSWORD_AUTH_CODE)
    assert (status, body["trade_state"]) == (200, "SUCCESS")
    paid = await wechat_channel.query(ref(order))
    assert (paid.state, paid.channel_trade_no) == (TradeState.SUCCEEDED, body["transaction_id"])


async def test_password_entered_after_a_while(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("barcode", auth_code=PASSWORD_AUTH_CODE)
    assert (await wechat_channel.create(order)).state is TradeState.PENDING
    status = await eventually(
        lambda: wechat_channel.query(ref(order)), lambda s: s.state is not TradeState.PENDING
    )
    assert status.state is TradeState.SUCCEEDED


async def test_password_payment_declined(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, wechat_simulator, password_entry_ms=None)
    order = new_order("barcode", auth_code=PASSWORD_AUTH_CODE)
    await wechat_channel.create(order)
    status, body = await buyer(http_session, wechat_simulator, "decline", PASSWORD_AUTH_CODE)
    assert (status, body["trade_state"]) == (200, "PAYERROR")
    assert (await wechat_channel.query(ref(order))).state is TradeState.FAILED


@pytest.mark.parametrize(
    "auth_code", ["286648488111111111", "16456789012345678", "1345678901234567890", "13456789012a"]
)
async def test_foreign_payment_codes_are_refused(
    wechat_channel: WeChatChannel, auth_code: str
) -> None:
    with pytest.raises(ChannelRejected) as caught:
        await wechat_channel.create(new_order("barcode", auth_code=auth_code))
    assert (caught.value.code, caught.value.fault) == ("AUTH_CODE_INVALID", "buyer")
    assert "18" in caught.value.message
