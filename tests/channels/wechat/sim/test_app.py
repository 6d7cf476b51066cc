"""`WeChatChannel` against the WeChat Pay simulator, both on loopback over real HTTP."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp
import pytest
from multidict import CIMultiDict

from channels.base import Method, TradeState
from channels.clock import ShiftedClock
from channels.errors import (
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    NotificationRejected,
)
from channels.wechat import WeChatChannel, WeChatCredentials, crypto
from channels.wechat.notification import build_notification
from channels.wechat.protocol import wire
from channels.wechat.sandbox import credentials_path
from tests.channels.conftest import Receiver, WeChatSim
from tests.channels.wechat.support import buyer, control, new_order, ref, set_faults


def code_of(result_action: Mapping[str, object]) -> str:
    """What the buyer gets from an action: QR string, URL, or prepay id."""
    if result_action["type"] == "qr_code":
        return str(result_action["qr_code"])
    if result_action["type"] == "redirect":
        return str(result_action["url"])
    params = result_action["params"]
    assert isinstance(params, Mapping)
    return str(params.get("prepayid") or str(params["package"]).removeprefix("prepay_id="))


# Create, per method


@pytest.mark.parametrize(
    ("method", "action_type"),
    [("qr", "qr_code"), ("h5", "redirect"), ("jsapi", "app_params"), ("app", "app_params")],
)
async def test_create_each_method(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, method: Method, action_type: str
) -> None:
    result = await wechat_channel.create(new_order(method))
    assert result.action.type == action_type
    assert result.state is TradeState.PENDING
    merchant_key = wechat_simulator.state.default_account().merchant_public_key
    if method == "qr":
        assert result.action.qr_code is not None
        assert result.action.qr_code.startswith("weixin://wxpay/bizpayurl?pr=")
    elif method == "h5":
        assert result.action.url is not None
        assert result.action.url.startswith(f"{wechat_simulator.base_url}/sim/h5/checkmweb?")
    elif method == "jsapi":
        params = result.action.params
        assert params is not None
        assert params["signType"] == "RSA"
        message = "\n".join(
            [params["appId"], params["timeStamp"], params["nonceStr"], params["package"], ""]
        )
        assert crypto.rsa_verify(merchant_key, message.encode(), params["paySign"])
    else:
        params = result.action.params
        assert params is not None
        assert params["package"] == "Sign=WXPay"
        message = "\n".join(
            [params["appid"], params["timestamp"], params["noncestr"], params["prepayid"], ""]
        )
        assert crypto.rsa_verify(merchant_key, message.encode(), params["sign"])


async def test_barcode_pays_at_once(wechat_channel: WeChatChannel) -> None:
    order = new_order("barcode")
    result = await wechat_channel.create(order)
    assert result.state is TradeState.SUCCEEDED
    assert result.channel_trade_no is not None
    assert result.paid_at is not None
    status = await wechat_channel.query(ref(order))
    assert status.state is TradeState.SUCCEEDED


async def test_h5_page_is_served(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    result = await wechat_channel.create(new_order("h5"))
    assert result.action.url is not None
    async with http_session.get(result.action.url) as response:
        assert response.status == 200
        assert "Sandbox T-shirt" in await response.text()
    status, _ = await buyer(http_session, wechat_simulator, "pay", result.action.url)
    assert status == 200


# Pay, notify, query


async def test_buyer_pays_and_notification_verifies(
    wechat_channel: WeChatChannel,
    wechat_simulator: WeChatSim,
    http_session: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    order = new_order("qr", receiver.url)
    result = await wechat_channel.create(order)
    assert result.action.qr_code is not None
    status, paid = await buyer(http_session, wechat_simulator, "pay", result.action.qr_code)
    assert status == 200
    assert paid["trade_state"] == "SUCCESS"

    received = await receiver.next()
    assert received.headers["Wechatpay-Serial"].startswith("PUB_KEY_ID_")
    notification = wechat_channel.parse_notification(received.headers, received.body)
    assert notification.event_type == "TRANSACTION.SUCCESS"
    trade = notification.trade
    assert trade is not None
    assert notification.refund is None
    assert trade.order_no == order.order_no
    assert trade.state is TradeState.SUCCEEDED
    assert trade.amount == 1999
    assert trade.currency == "CNY"
    assert trade.channel_trade_no == paid["transaction_id"]
    assert trade.paid_at is not None
    assert trade.paid_at.tzinfo is not None

    queried = await wechat_channel.query(ref(order))
    assert queried.state is TradeState.SUCCEEDED
    assert queried.paid_at == trade.paid_at
    assert queried.channel_trade_no == trade.channel_trade_no

    ack = wechat_channel.acknowledgement(True)
    assert (ack.status, json.loads(ack.body)) == (200, {"code": "SUCCESS", "message": "成功"})
    refusal = wechat_channel.acknowledgement(False)
    assert (refusal.status, json.loads(refusal.body)["code"]) == (500, "FAIL")


async def test_notification_is_retried_until_acknowledged(
    wechat_channel: WeChatChannel,
    wechat_simulator: WeChatSim,
    http_session: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    receiver.replies = [500, 503]
    order = new_order("qr", receiver.url)
    result = await wechat_channel.create(order)
    assert result.action.qr_code is not None
    await buyer(http_session, wechat_simulator, "pay", result.action.qr_code)
    first, second, third = await receiver.take(3)
    assert first.body == second.body == third.body
    # Each attempt is signed afresh and verifies on its own.
    for item in (first, second, third):
        wechat_channel.parse_notification(item.headers, item.body)

    sim_order = wechat_simulator.state.orders.get("1900000001", order.order_no)
    assert sim_order is not None
    (delivery,) = sim_order.deliveries
    assert await delivery.wait() == "delivered"
    status, view = await control(
        http_session, "GET", f"{wechat_simulator.base_url}/sim/orders/{order.order_no}"
    )
    assert status == 200
    attempts = view["notifications"][0]["attempts"]
    assert [attempt["status"] for attempt in attempts] == [500, 503, 200]
    # The second wait is 15 s of channel time: 15 ms here.
    assert attempts[2]["at"] - attempts[1]["at"] >= 15 * 0.001


async def test_query_and_close_unknown_orders(wechat_channel: WeChatChannel) -> None:
    status = await wechat_channel.query(ref("pay_never_created"))
    assert status.state is TradeState.NOT_FOUND
    await wechat_channel.close(ref("pay_never_created"))


async def test_close(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("qr")
    result = await wechat_channel.create(order)
    await wechat_channel.close(ref(order))
    await wechat_channel.close(ref(order))  # closing twice is fine
    status = await wechat_channel.query(ref(order))
    assert (status.state, status.channel_state) == (TradeState.CLOSED, "CLOSED")
    assert result.action.qr_code is not None
    code, body = await buyer(http_session, wechat_simulator, "pay", result.action.qr_code)
    assert code == 409
    assert "CLOSED" in body["error"]["message"]
    with pytest.raises(ChannelRejected) as caught:
        await wechat_channel.create(order)
    assert caught.value.code == "ORDER_CLOSED"
    assert caught.value.fault == "request"


async def test_repeated_create(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    order = new_order("qr")
    first = await wechat_channel.create(order)
    again = await wechat_channel.create(replace(order, client_ip="198.51.100.1"))
    assert again.action.qr_code == first.action.qr_code
    with pytest.raises(ChannelRejected) as caught:
        await wechat_channel.create(replace(order, amount=2999))
    assert (caught.value.code, caught.value.fault) == ("INVALID_REQUEST", "request")
    assert first.action.qr_code is not None
    await buyer(http_session, wechat_simulator, "pay", first.action.qr_code)
    with pytest.raises(ChannelRejected) as paid:
        await wechat_channel.create(order)
    assert paid.value.code == "ORDERPAID"
    with pytest.raises(ChannelRejected) as close_paid:
        await wechat_channel.close(ref(order))
    assert close_paid.value.code == "ORDERPAID"


async def test_decline(
    wechat_channel: WeChatChannel,
    wechat_simulator: WeChatSim,
    http_session: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    order = new_order("jsapi", receiver.url)
    result = await wechat_channel.create(order)
    assert result.action.params is not None
    prepay_id = result.action.params["package"].removeprefix("prepay_id=")
    status, body = await buyer(http_session, wechat_simulator, "decline", prepay_id)
    assert (status, body["trade_state"]) == (200, "PAYERROR")
    queried = await wechat_channel.query(ref(order))
    assert (queried.state, queried.channel_state) == (TradeState.FAILED, "PAYERROR")
    assert receiver.received == []

    await set_faults(http_session, wechat_simulator, decline_rate=1)
    other = await wechat_channel.create(new_order("app", receiver.url))
    assert other.action.params is not None
    status, body = await buyer(
        http_session, wechat_simulator, "pay", other.action.params["prepayid"]
    )
    assert body["trade_state"] == "PAYERROR"


async def test_unknown_buyer_code(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    status, body = await buyer(http_session, wechat_simulator, "pay", "weixin://nothing")
    assert status == 404
    assert body["error"]["field"] == "code"


async def test_order_numbers_with_reserved_characters(wechat_channel: WeChatChannel) -> None:
    # `|` travels percent-encoded; the simulator checks the signature over the raw path.
    order = replace(new_order("qr"), order_no=f"A|{secrets.token_hex(4)}*_-")
    await wechat_channel.create(order)
    status = await wechat_channel.query(ref(order))
    assert status.order_no == order.order_no
    await wechat_channel.close(ref(order))


# Faults


async def test_error_rate_is_outcome_unknown(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, wechat_simulator, error_rate=1)
    with pytest.raises(ChannelOutcomeUnknown) as caught:
        await wechat_channel.create(new_order())
    assert caught.value.code == "SYSTEM_ERROR"


async def test_outage_is_unavailable(
    wechat_channel: WeChatChannel, wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    await set_faults(http_session, wechat_simulator, outage=True, latency_ms=5)
    with pytest.raises(ChannelUnavailable):
        await wechat_channel.query(ref("pay_anything"))


async def test_timeout_is_outcome_unknown_and_the_order_exists(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    config = wechat_simulator.account_config(timeouts={"connect": 1, "total": 0.3})
    channel = WeChatChannel("wechat_slow", config, _credentials(wechat_simulator), http_session)
    await set_faults(http_session, wechat_simulator, timeout_rate=1, hang_ms=5000)
    order = new_order()
    with pytest.raises(ChannelOutcomeUnknown):
        await channel.create(order)
    await set_faults(http_session, wechat_simulator)
    status = await channel.query(ref(order))
    assert status.state is TradeState.PENDING


async def test_faults_are_validated(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    url = f"{wechat_simulator.base_url}/sim/faults"
    status, body = await control(http_session, "PUT", url, {"error_rate": 2})
    assert status == 400
    assert body["error"]["field"] == "error_rate"
    status, body = await control(http_session, "PUT", url, {"eror_rate": 0.5})
    assert (status, body["error"]["field"]) == (400, "eror_rate")
    status, body = await control(http_session, "PUT", url, {"latency_ms": 3, "outage": False})
    assert status == 200
    status, body = await control(http_session, "GET", url)
    assert (body["latency_ms"], body["error_rate"], body["auto_pay_after_ms"]) == (3, 0.0, None)


async def test_auto_pay_and_notification_faults(
    wechat_channel: WeChatChannel,
    wechat_simulator: WeChatSim,
    http_session: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    await set_faults(
        http_session,
        wechat_simulator,
        auto_pay_after_ms=1000,
        drop_notifications=1,
        duplicate_notifications=1,
        notify_delay_ms=1,
    )
    order = new_order("qr", receiver.url)
    await wechat_channel.create(order)
    first, second = await receiver.take(2)
    assert first.body == second.body
    for item in (first, second):
        notification = wechat_channel.parse_notification(item.headers, item.body)
        assert notification.trade is not None
        assert notification.trade.order_no == order.order_no
    sim_order = wechat_simulator.state.orders.get("1900000001", order.order_no)
    assert sim_order is not None
    assert len(sim_order.deliveries) == 2
    for delivery in sim_order.deliveries:
        assert await delivery.wait() == "delivered"
        assert [attempt.error for attempt in delivery.attempts] == [
            "dropped by fault injection",
            None,
        ]


# Verification


def _credentials(sim: WeChatSim, **changes: str) -> WeChatCredentials:
    """The sandbox credentials, with some fields changed (validated afresh)."""
    bundle = sim.state.default_account().credentials.bundle()
    return WeChatCredentials.model_validate({**bundle, **changes})


async def test_unverifiable_answer_is_outcome_unknown(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    fixture_public = crypto.public_key_pem(crypto.load_private_key(_fixture_key_pem()).public_key())
    credentials = _credentials(wechat_simulator, platform_public_key=fixture_public)
    channel = WeChatChannel(
        "wechat_wrong_key", wechat_simulator.account_config(), credentials, http_session
    )
    with pytest.raises(ChannelOutcomeUnknown) as caught:
        await channel.create(new_order())
    assert caught.value.code == "ANSWER_SIGNATURE"


async def test_bad_request_signature_is_rejected(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    credentials = _credentials(wechat_simulator, merchant_private_key=_fixture_key_pem())
    channel = WeChatChannel(
        "wechat_wrong_key", wechat_simulator.account_config(), credentials, http_session
    )
    with pytest.raises(ChannelRejected) as caught:
        await channel.query(ref("pay_x"))
    assert (caught.value.code, caught.value.fault) == ("SIGN_ERROR", "request")


def _fixture_key_pem() -> str:
    from tests.channels.wechat.test_protocol import FIXTURES

    return (FIXTURES / "test_private_key.pem").read_text()


async def test_protocol_answers_are_signed_and_carry_request_id(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    url = f"{wechat_simulator.base_url}/v3/pay/transactions/out-trade-no/x?mchid=1900000001"
    async with http_session.get(url) as response:
        body = await response.read()
        assert response.status == 401
        assert json.loads(body)["code"] == "SIGN_ERROR"
        assert response.headers["Request-ID"]
        account = wechat_simulator.state.default_account()
        keys = {account.credentials.platform_public_key_id: account.credentials.platform_key}
        crypto.verify_answer(response.headers, body, keys, now=time.time())


async def test_param_error_names_the_field(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    credentials = _credentials(wechat_simulator)
    merchant = wire.Merchant(
        credentials.mchid,
        credentials.appid,
        credentials.merchant_serial_no,
        credentials.merchant_key,
    )
    payload = {
        "appid": credentials.appid,
        "mchid": credentials.mchid,
        "out_trade_no": "pay_no_description",
        "notify_url": "https://example.com/notify",
        "amount": {"total": 1, "currency": "CNY"},
    }
    request = wire.signed_request(
        merchant,
        wechat_simulator.base_url,
        "POST",
        "/v3/pay/transactions/native",
        payload,
        timestamp=int(time.time()),
        nonce=secrets.token_hex(16),
    )
    async with http_session.post(
        request.url, data=request.body, headers=dict(request.headers)
    ) as response:
        assert response.status == 400
        body = await response.json()
    assert body["code"] == "PARAM_ERROR"
    assert body["detail"]["field"] == "/description"
    assert "description" in body["message"]


async def test_forged_and_tampered_notifications_are_rejected(
    wechat_channel: WeChatChannel,
    wechat_simulator: WeChatSim,
    http_session: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    order = new_order("qr", receiver.url)
    result = await wechat_channel.create(order)
    assert result.action.qr_code is not None
    await buyer(http_session, wechat_simulator, "pay", result.action.qr_code)
    real = await receiver.next()
    account = wechat_simulator.state.default_account()

    def rejected(headers: Mapping[str, str], body: bytes, channel: WeChatChannel) -> str:
        with pytest.raises(NotificationRejected) as caught:
            channel.parse_notification(headers, body)
        return caught.value.reason

    tampered = real.body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCESS" ')
    assert rejected(real.headers, tampered, wechat_channel) == "signature"
    headers = CIMultiDict(real.headers)
    headers["Wechatpay-Serial"] = "PUB_KEY_ID_0100000000000000000000"
    assert rejected(headers, real.body, wechat_channel) == "signature"
    del headers["Wechatpay-Signature"]
    assert rejected(headers, real.body, wechat_channel) == "signature"

    forger = crypto.load_private_key(_fixture_key_pem())
    key_id = account.credentials.platform_public_key_id
    forged = crypto.sign_answer(
        forger, key_id, real.body, timestamp=int(time.time()), nonce="forged"
    )
    assert rejected(forged, real.body, wechat_channel) == "signature"

    late = WeChatChannel(
        "wechat_late",
        wechat_simulator.account_config(),
        account.credentials,
        http_session,
        clock=ShiftedClock(600),
    )
    assert rejected(real.headers, real.body, late) == "timestamp"

    def platform_signed(body: bytes) -> dict[str, str]:
        return wechat_simulator.state.sign(account, body)

    envelope = json.loads(real.body)
    envelope["resource"]["ciphertext"] = "A" * 40
    bad_cipher = wire.dump_json(envelope)
    assert rejected(platform_signed(bad_cipher), bad_cipher, wechat_channel) == "decrypt"
    assert rejected(platform_signed(b"{oops"), b"{oops", wechat_channel) == "malformed"

    foreign = build_notification(
        notification_id="EV-foreign",
        create_time=datetime.now(UTC),
        resource={
            "mchid": "1900000002",
            "appid": account.credentials.appid,
            "out_trade_no": order.order_no,
            "trade_state": "SUCCESS",
            "amount": {"total": 1999, "currency": "CNY"},
        },
        apiv3_key=account.credentials.apiv3_key.get_secret_value(),
        nonce="abcdefghijkl",
    )
    assert rejected(platform_signed(foreign), foreign, wechat_channel) == "account"


# Control plane


async def test_sim_accounts_hand_out_the_sandbox_bundle(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> None:
    status, body = await control(http_session, "GET", f"{wechat_simulator.base_url}/sim/accounts")
    assert status == 200
    (bundle,) = body["accounts"]
    on_disk = json.loads(credentials_path(wechat_simulator.sandbox_dir).read_text())
    assert bundle == on_disk
    assert set(bundle) == {
        "mchid",
        "appid",
        "merchant_serial_no",
        "merchant_private_key",
        "platform_public_key_id",
        "platform_public_key",
        "apiv3_key",
        "app_secret",
    }


async def test_sim_order_view(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession, wechat_channel: WeChatChannel
) -> None:
    order = new_order("qr")
    await wechat_channel.create(order)
    status, body = await control(
        http_session, "GET", f"{wechat_simulator.base_url}/sim/orders/{order.order_no}"
    )
    assert status == 200
    assert body["order"]["trade_state"] == "NOTPAY"
    assert body["order"]["amount"]["total"] == 1999
    assert body["notifications"] == []
    status, body = await control(
        http_session, "GET", f"{wechat_simulator.base_url}/sim/orders/nothing"
    )
    assert status == 404
