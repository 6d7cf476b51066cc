"""`UnionPayChannel` against the UnionPay simulator, both on loopback over real HTTP."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from channels.base import CreateOrder, Method, OrderRef, RefundOrder, RefundState, TradeState
from channels.errors import (
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    NotificationRejected,
)
from channels.unionpay import UnionPayChannel, UnionPayCredentials, crypto
from channels.unionpay.protocol import requests, wire
from channels.unionpay.sandbox import SANDBOX_MER_ID, make_chain
from tests.channels.conftest import Receiver
from tests.channels.unionpay.conftest import UnionPaySim
from tests.channels.unionpay.keys import chain

PAYMENT_CODE = "6225880137370011234"


def new_order(
    method: Method = "qr", notify_url: str = "http://127.0.0.1:9/notify", amount: int = 1999
) -> CreateOrder:
    return CreateOrder(
        order_no=f"pay_{secrets.token_hex(10)}",
        created_at=datetime.now(UTC),
        amount=amount,
        currency="CNY",
        method=method,
        description="Sandbox T-shirt",
        notify_url=notify_url,
        expires_at=datetime.now(UTC) + timedelta(minutes=30),
        return_url="https://merchant.example/return",
        auth_code=PAYMENT_CODE,
    )


def ref(order: CreateOrder, channel_trade_no: str | None = None) -> OrderRef:
    return OrderRef(order.order_no, order.created_at, channel_trade_no)


def new_refund(
    order: CreateOrder, query_id: str | None, amount: int, notify_url: str = "http://127.0.0.1:9/n"
) -> RefundOrder:
    return RefundOrder(
        refund_no=f"re_{secrets.token_hex(10)}",
        created_at=datetime.now(UTC),
        payment=ref(order, query_id),
        amount=amount,
        total=order.amount,
        currency="CNY",
        notify_url=notify_url,
    )


async def paid_order(
    channel: UnionPayChannel, sim: UnionPaySim, method: Method = "qr", notify_url: str = ""
) -> tuple[CreateOrder, str]:
    """An order the buyer has paid, and its queryId."""
    order = new_order(method, notify_url or "http://127.0.0.1:9/notify")
    result = await channel.create(order)
    if method == "qr":
        assert result.action.qr_code is not None
        status, body = await sim.buyer("pay", result.action.qr_code)
        assert status == 200, body
    trade = await channel.query(ref(order))
    assert trade.state is TradeState.SUCCEEDED
    assert trade.channel_trade_no is not None
    return order, trade.channel_trade_no


# Create, per method


async def test_web_and_h5_are_signed_forms_the_browser_posts(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim
) -> None:
    for method, channel_type in (("web", "07"), ("h5", "08")):
        order = new_order(method)  # type: ignore[arg-type]
        result = await unionpay_channel.create(order)
        action = result.action
        assert (action.type, result.state) == ("form_post", TradeState.PENDING)
        assert action.url == f"{unionpay_simulator.base_url}/gateway/api/frontTransReq.do"
        assert action.fields is not None
        fields = dict(action.fields)
        assert fields["channelType"] == channel_type
        assert fields["orderId"] == wire.to_order_id(order.order_no)
        assert fields["frontUrl"] == "https://merchant.example/return"
        # Nothing reached UnionPay yet: the form is the buyer's to post.
        assert (await unionpay_channel.query(ref(order))).state is TradeState.NOT_FOUND
        status, page = await unionpay_simulator.post_form(action.url, fields)
        assert status == 200
        assert "¥19.99" in page and fields["orderId"] in page
        assert (await unionpay_channel.query(ref(order))).state is TradeState.PENDING
        # The browser posting twice (a reload) shows the same cashier.
        assert (await unionpay_simulator.post_form(action.url, fields))[0] == 200


async def test_app_and_qr(unionpay_channel: UnionPayChannel) -> None:
    app = await unionpay_channel.create(new_order("app"))
    assert app.action.type == "app_params"
    assert app.action.params is not None and len(app.action.params["tn"]) == 21
    qr = await unionpay_channel.create(new_order("qr"))
    assert qr.action.type == "qr_code"
    assert qr.action.qr_code is not None
    assert qr.action.qr_code.startswith("https://qr.95516.com/00010000/")


async def test_repeated_create_gets_the_same_answer(unionpay_channel: UnionPayChannel) -> None:
    order = new_order("qr")
    first = await unionpay_channel.create(order)
    again = await unionpay_channel.create(order)
    assert again == first
    with pytest.raises(ChannelRejected) as caught:
        await unionpay_channel.create(replace(order, amount=2999))
    assert (caught.value.code, caught.value.fault) == ("12", "request")


async def test_barcode_pays_at_once_and_refuses_a_decline(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim
) -> None:
    order = new_order("barcode")
    result = await unionpay_channel.create(order)
    assert (result.state, result.action.type) == (TradeState.SUCCEEDED, "none")
    trade = await unionpay_channel.query(ref(order))
    assert (trade.state, trade.channel_trade_no) == (TradeState.SUCCEEDED, result.channel_trade_no)
    await unionpay_simulator.set_faults(decline_rate=1)
    with pytest.raises(ChannelRejected) as caught:
        await unionpay_channel.create(new_order("barcode"))
    assert (caught.value.code, caught.value.fault) == ("64", "buyer")
    with pytest.raises(ChannelRejected) as invalid:
        await unionpay_channel.create(replace(new_order("barcode"), auth_code="134567890123456789"))
    assert (invalid.value.code, invalid.value.fault) == ("10", "request")


# The query-again path (03/04/05)


async def test_barcode_waiting_for_the_buyer_is_pending_until_confirmed(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim, receiver: Receiver
) -> None:
    await unionpay_simulator.set_faults(password_entry_ms=None)
    order = new_order("barcode", receiver.url, amount=305)
    result = await unionpay_channel.create(order)
    assert (result.state, result.action.type) == (TradeState.PENDING, "none")
    first = await unionpay_channel.query(ref(order))
    assert (first.state, first.channel_state) == (TradeState.PENDING, "05")
    status, body = await unionpay_simulator.buyer("pay", PAYMENT_CODE)
    assert (status, body["state"]) == (200, "succeeded")
    assert (await unionpay_channel.query(ref(order))).state is TradeState.SUCCEEDED
    notification = unionpay_channel.parse_notification({}, (await receiver.next()).body)
    assert notification.trade is not None
    assert notification.trade.state is TradeState.SUCCEEDED


async def test_above_the_no_password_limit_the_buyer_enters_a_password(
    unionpay_channel: UnionPayChannel, receiver: Receiver
) -> None:
    """With the default faults the buyer takes `password_entry_ms` (10 ms here) to pay."""
    order = new_order("barcode", receiver.url, amount=100_001)
    assert (await unionpay_channel.create(order)).state is TradeState.PENDING
    notification = unionpay_channel.parse_notification({}, (await receiver.next()).body)
    assert notification.trade is not None
    assert notification.trade.state is TradeState.SUCCEEDED
    assert (await unionpay_channel.query(ref(order))).state is TradeState.SUCCEEDED


async def test_a_timed_out_answer_is_pending_but_the_payment_went_through(
    unionpay_channel: UnionPayChannel,
) -> None:
    order = new_order("barcode", amount=303)
    assert (await unionpay_channel.create(order)).state is TradeState.PENDING
    assert (await unionpay_channel.query(ref(order))).state is TradeState.SUCCEEDED


async def test_app_answered_processing_is_unknown_and_the_order_exists(
    unionpay_channel: UnionPayChannel,
) -> None:
    order = new_order("app", amount=304)
    with pytest.raises(ChannelOutcomeUnknown) as caught:
        await unionpay_channel.create(order)
    assert caught.value.code == "04"
    assert (await unionpay_channel.query(ref(order))).state is TradeState.PENDING


async def test_refund_answered_processing_finishes_later(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim, receiver: Receiver
) -> None:
    order, query_id = await paid_order(unionpay_channel, unionpay_simulator, "barcode")
    refund = new_refund(order, query_id, 305, receiver.url)
    accepted = await unionpay_channel.refund(refund)
    assert (accepted.state, accepted.channel_state) == (RefundState.PENDING, "05")
    assert (await unionpay_channel.query_refund(refund)).state in (
        RefundState.PENDING,
        RefundState.SUCCEEDED,
    )
    notification = unionpay_channel.parse_notification({}, (await receiver.next()).body)
    assert notification.refund is not None
    assert (notification.refund.refund_no, notification.refund.amount) == (refund.refund_no, 305)
    assert (await unionpay_channel.query_refund(refund)).state is RefundState.SUCCEEDED


# Pay, notify, query


async def test_buyer_pays_and_the_notification_verifies(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim, receiver: Receiver
) -> None:
    order = new_order("app", receiver.url)
    result = await unionpay_channel.create(order)
    assert result.action.params is not None
    status, paid = await unionpay_simulator.buyer("pay", result.action.params["tn"])
    assert (status, paid["state"], paid["origRespCode"]) == (200, "succeeded", "00")
    received = await receiver.next()
    assert received.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    fields = wire.decode_form(received.body)
    assert fields["signPubKeyCert"].startswith("-----BEGIN CERTIFICATE-----")
    notification = unionpay_channel.parse_notification(received.headers, received.body)
    assert notification.event_type == "consume"
    trade = notification.trade
    assert trade is not None
    assert (trade.order_no, trade.state, trade.amount) == (
        order.order_no,
        TradeState.SUCCEEDED,
        1999,
    )
    assert (trade.currency, trade.account_id) == ("CNY", SANDBOX_MER_ID)
    assert trade.channel_trade_no == paid["queryId"] == notification.notification_id
    queried = await unionpay_channel.query(ref(order))
    assert (queried.state, queried.channel_trade_no) == (TradeState.SUCCEEDED, paid["queryId"])
    ack = unionpay_channel.acknowledgement(True)
    assert (ack.status, ack.body, ack.content_type) == (200, b"ok", "text/plain")
    assert unionpay_channel.acknowledgement(False).status == 500


async def test_notification_is_retried_until_acknowledged(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim, receiver: Receiver
) -> None:
    receiver.replies = [500, 404]
    order = new_order("qr", receiver.url)
    result = await unionpay_channel.create(order)
    assert result.action.qr_code is not None
    await unionpay_simulator.buyer("pay", result.action.qr_code)
    first, second, third = await receiver.take(3)
    assert first.body == second.body == third.body
    unionpay_channel.parse_notification(third.headers, third.body)
    txn = unionpay_simulator.state.book.by_order_id(wire.to_order_id(order.order_no))
    assert txn is not None
    (delivery,) = txn.deliveries
    assert await delivery.wait() == "delivered"
    status, view = await unionpay_simulator.control("GET", f"/sim/orders/{txn.order_id}")
    assert status == 200
    attempts = view["notifications"][0]["attempts"]
    assert [attempt["status"] for attempt in attempts] == [500, 404, 200]
    # The second wait is 2 minutes of channel time: 120 ms here.
    assert attempts[2]["at"] - attempts[1]["at"] >= 120 * 0.001


async def test_form_payment_and_the_return_to_the_merchant(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim, receiver: Receiver
) -> None:
    order = new_order("web", receiver.url)
    action = (await unionpay_channel.create(order)).action
    assert action.url is not None and action.fields is not None
    await unionpay_simulator.post_form(action.url, dict(action.fields))
    status, paid = await unionpay_simulator.buyer("pay", action.fields["orderId"])
    assert (status, paid["state"]) == (200, "succeeded")
    unionpay_channel.parse_notification({}, (await receiver.next()).body)
    back = f"{unionpay_simulator.base_url}/sim/front-return?queryId={paid['queryId']}"
    async with unionpay_simulator.session.get(back) as response:
        page = await response.text()
    assert 'action="https://merchant.example/return"' in page
    assert 'name="respCode" value="00"' in page


async def test_decline(unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim) -> None:
    order = new_order("qr")
    result = await unionpay_channel.create(order)
    assert result.action.qr_code is not None
    status, body = await unionpay_simulator.buyer("decline", result.action.qr_code)
    assert (status, body["state"], body["origRespCode"]) == (200, "failed", "64")
    trade = await unionpay_channel.query(ref(order))
    assert (trade.state, trade.channel_state) == (TradeState.FAILED, "64")
    again, refused = await unionpay_simulator.buyer("pay", result.action.qr_code)
    assert again == 409, refused


async def test_unknown_buyer_code_and_order(unionpay_simulator: UnionPaySim) -> None:
    status, body = await unionpay_simulator.buyer("pay", "https://qr.95516.com/00010000/0")
    assert (status, body["error"]["field"]) == (404, "code")
    status, body = await unionpay_simulator.control("GET", "/sim/orders/payNothing123")
    assert status == 404


# Close


async def test_close_an_unpaid_order(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim
) -> None:
    order = new_order("qr")
    result = await unionpay_channel.create(order)
    await unionpay_channel.close(ref(order))
    await unionpay_channel.close(ref(order))  # closing twice is fine
    trade = await unionpay_channel.query(ref(order))
    assert (trade.state, trade.channel_state) == (TradeState.CLOSED, "45")
    assert result.action.qr_code is not None
    status, body = await unionpay_simulator.buyer("pay", result.action.qr_code)
    assert status == 409, body


async def test_close_a_form_never_submitted(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim
) -> None:
    order = new_order("h5")
    action = (await unionpay_channel.create(order)).action
    await unionpay_channel.close(ref(order))
    assert (await unionpay_channel.query(ref(order))).state is TradeState.CLOSED
    assert action.url is not None and action.fields is not None
    status, page = await unionpay_simulator.post_form(action.url, dict(action.fields))
    assert status == 400
    assert '<b id="respCode">12</b>' in page


async def test_close_a_paid_order_is_refused(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim
) -> None:
    order, query_id = await paid_order(unionpay_channel, unionpay_simulator)
    with pytest.raises(ChannelRejected) as caught:
        await unionpay_channel.close(ref(order, query_id))
    assert caught.value.code == "ORDER_PAID"
    assert (await unionpay_channel.query(ref(order))).state is TradeState.SUCCEEDED


# Refunds


async def test_partial_refunds_up_to_the_amount(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim, receiver: Receiver
) -> None:
    order, query_id = await paid_order(unionpay_channel, unionpay_simulator)
    first = new_refund(order, query_id, 1000, receiver.url)
    accepted = await unionpay_channel.refund(first)
    assert (accepted.state, accepted.channel_state) == (RefundState.PENDING, "00")
    again = await unionpay_channel.refund(first)  # a resend is the same refund
    assert again.channel_refund_no == accepted.channel_refund_no
    notification = unionpay_channel.parse_notification({}, (await receiver.next()).body)
    assert notification.refund is not None
    assert notification.refund.state is RefundState.SUCCEEDED
    done = await unionpay_channel.query_refund(first)
    assert (done.state, done.amount) == (RefundState.SUCCEEDED, 1000)
    with pytest.raises(ChannelRejected) as over:
        await unionpay_channel.refund(new_refund(order, query_id, 1000))
    assert (over.value.code, over.value.fault) == ("33", "request")
    # Named by orderId + txnTime when the queryId is not known.
    rest = await unionpay_channel.refund(new_refund(order, None, 999))
    assert rest.state is RefundState.PENDING
    txn = unionpay_simulator.state.book.by_order_id(wire.to_order_id(order.order_no))
    assert txn is not None and txn.refunded() == 1999


async def test_a_failed_refund_gives_the_amount_back(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim
) -> None:
    await unionpay_simulator.set_faults(refund_delay_ms=0, refund_fail_rate=1)
    order, query_id = await paid_order(unionpay_channel, unionpay_simulator, "barcode")
    refund = new_refund(order, query_id, 1999)
    assert (await unionpay_channel.refund(refund)).state is RefundState.PENDING
    failed = await unionpay_channel.query_refund(refund)
    assert (failed.state, failed.channel_state) == (RefundState.FAILED, "01")
    await unionpay_simulator.set_faults(refund_delay_ms=0)
    retry = new_refund(order, query_id, 1999)
    await unionpay_channel.refund(retry)
    assert (await unionpay_channel.query_refund(retry)).state is RefundState.SUCCEEDED


async def test_refunds_of_unpaid_or_unknown_orders_are_refused(
    unionpay_channel: UnionPayChannel,
) -> None:
    order = new_order("qr")
    await unionpay_channel.create(order)
    with pytest.raises(ChannelRejected) as unpaid:
        await unionpay_channel.refund(new_refund(order, None, 100))
    assert unpaid.value.code == "35"
    with pytest.raises(ChannelRejected) as unknown:
        await unionpay_channel.refund(new_refund(order, "202601010000001234567", 100))
    assert unknown.value.code == "35"
    missing = await unionpay_channel.query_refund(new_refund(order, None, 100))
    assert missing.state is RefundState.NOT_FOUND


# Faults and refusals


async def test_faults(unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim) -> None:
    await unionpay_simulator.set_faults(outage=True)
    with pytest.raises(ChannelUnavailable):
        await unionpay_channel.query(ref(new_order()))
    await unionpay_simulator.set_faults(error_rate=1)
    with pytest.raises(ChannelUnavailable) as busy:
        await unionpay_channel.create(new_order())
    assert busy.value.code == "06"


async def test_timeout_is_outcome_unknown_and_the_order_exists(
    unionpay_simulator: UnionPaySim,
) -> None:
    config = unionpay_simulator.account_config(timeouts={"connect": 1, "total": 0.3})
    channel = UnionPayChannel(
        "unionpay_slow",
        config,
        unionpay_simulator.state.default_account().credentials,
        unionpay_simulator.session,
    )
    await unionpay_simulator.set_faults(timeout_rate=1, hang_ms=5000)
    order = new_order()
    with pytest.raises(ChannelOutcomeUnknown):
        await channel.create(order)
    await unionpay_simulator.set_faults()
    assert (await channel.query(ref(order))).state is TradeState.PENDING


async def _post(sim: UnionPaySim, path: str, fields: dict[str, str]) -> dict[str, str]:
    async with sim.session.post(sim.base_url + path, data=fields) as response:
        assert response.status == 200
        answer = wire.decode_answer(await response.read())
    crypto.verify_signed(answer, _verifier(sim), datetime.now(UTC))
    return answer


def _verifier(sim: UnionPaySim) -> crypto.ChainVerifier:
    credentials = sim.state.default_account().credentials
    return crypto.ChainVerifier(
        credentials.root, credentials.middle, frozenset({crypto.TEST_OWNER})
    )


def _merchant(sim: UnionPaySim) -> wire.Merchant:
    credentials = sim.state.default_account().credentials
    return wire.Merchant(credentials.mer_id, credentials.cert_id, credentials.signing_key_object)


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"signature": "AAAA"}, "11", "signature"),
        ({"certId": "1"}, "11", "certId"),
        ({"txnAmt": "1"}, "11", "signature"),
        ({"merId": "777290058119999"}, "31", "merId"),
        ({"version": "5.0.0"}, "10", "version"),
    ],
)
async def test_refusals_are_signed_and_name_the_field(
    unionpay_simulator: UnionPaySim, change: dict[str, str], code: str, field: str
) -> None:
    fields = requests.consume_fields(_merchant(unionpay_simulator), requests.Consume(
        "qr", f"pay_{secrets.token_hex(8)}", datetime.now(UTC), 1999, "CNY", "http://x/n"
    ))  # fmt: skip
    answer = await _post(unionpay_simulator, requests.BACK_PATH, {**fields, **change})
    assert answer["respCode"] == code
    assert answer["respMsg"].endswith(f"[{field}]")


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"orderId": "pay_AbC123xyz"}, "10", "orderId"),
        ({"orderId": "pay1234"}, "10", "orderId"),
        ({"txnTime": "20261301000000"}, "10", "txnTime"),
        ({"txnAmt": "019"}, "10", "txnAmt"),
        ({"currencyCode": "840"}, "10", "currencyCode"),
        ({"txnSubType": "09"}, "32", "txnType=01,txnSubType=09"),
        ({"backUrl": ""}, "13", "backUrl"),
        ({"backUrl": "ftp://x"}, "10", "backUrl"),
    ],
)
async def test_field_rules(
    unionpay_simulator: UnionPaySim, change: dict[str, str], code: str, field: str
) -> None:
    fields = requests.consume_fields(_merchant(unionpay_simulator), requests.Consume(
        "qr", f"pay_{secrets.token_hex(8)}", datetime.now(UTC), 1999, "CNY", "http://x/n"
    ))  # fmt: skip
    merchant = _merchant(unionpay_simulator)
    resigned = wire.signed(merchant, {**fields, **change, "signature": "", "certId": ""})
    answer = await _post(unionpay_simulator, requests.BACK_PATH, resigned)
    assert (answer["respCode"], answer["respMsg"].endswith(f"[{field}]")) == (code, True)


async def test_an_answer_from_another_chain_is_outcome_unknown(
    unionpay_simulator: UnionPaySim,
) -> None:
    """The simulator's certificate does not chain to a root this merchant was given."""
    bundle = unionpay_simulator.state.default_account().credentials.bundle()
    # A root and middle made with other keys (any keys will do: only signatures differ).
    other = make_chain(datetime.now(UTC), chain().merchant_key, chain().channel_key)
    foreign = {
        **bundle,
        "middle_cert": crypto.certificate_pem(other.middle),
        "root_cert": crypto.certificate_pem(other.root),
    }
    channel = UnionPayChannel(
        "unionpay_other",
        unionpay_simulator.account_config(),
        UnionPayCredentials.model_validate(foreign),
        unionpay_simulator.session,
    )
    with pytest.raises(ChannelOutcomeUnknown) as caught:
        await channel.query(ref(new_order()))
    assert caught.value.code == "ANSWER_SIGNATURE"
    with pytest.raises(NotificationRejected):
        channel.parse_notification({}, b"")


# Control plane


async def test_sim_accounts_and_statement(
    unionpay_channel: UnionPayChannel, unionpay_simulator: UnionPaySim
) -> None:
    status, body = await unionpay_simulator.control("GET", "/sim/accounts")
    assert status == 200
    (bundle,) = body["accounts"]
    assert bundle == unionpay_simulator.state.default_account().credentials.bundle()
    await unionpay_simulator.set_faults(refund_delay_ms=0)
    order, query_id = await paid_order(unionpay_channel, unionpay_simulator, "barcode")
    await unionpay_channel.refund(new_refund(order, query_id, 500))
    today = datetime.now(wire.BEIJING).strftime("%Y%m%d")
    async with unionpay_simulator.session.get(
        f"{unionpay_simulator.base_url}/sim/statements/{today}"
    ) as response:
        text = await response.text()
    lines = text.splitlines()
    # 1999 paid, 500 refunded; fees 0.60% of each, the refund's given back (12 - 3).
    assert lines[-1] == "TOTAL 2 1499 1499 9"
    assert lines[0].startswith("S22") and query_id in lines[0]
    assert lines[1].startswith("S30") and lines[1].split()[-2] == query_id
