"""The Alipay simulator's API methods: one function per `method` the gateway serves.

Each takes the simulator, the (already authenticated) app, the request's parameters and the
request itself, and returns the `_response` object of a success; failures raise
`AlipayError`. `channels.alipay.sim.app` signs and sends whatever comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from channels.alipay.protocol.wire import fen_to_yuan, format_time
from channels.alipay.sandbox import SandboxAccount
from channels.alipay.sim import bill
from channels.alipay.sim.orders import Trade, business, invalid, text
from channels.alipay.sim.state import AlipaySimulator, parse_biz
from channels.sim.kit import Operation
from channels.sim.statements import knobs

MethodHandler = Callable[
    [AlipaySimulator, SandboxAccount, Mapping[str, str], web.Request], dict[str, Any]
]
_SUCCESS = {"code": "10000", "msg": "Success"}


def public_base(request: web.Request, sim: AlipaySimulator) -> str:
    """The simulator's address as buyers and downloads see it."""
    return sim.settings.public_base_url or f"{request.scheme}://{request.host}"


def _created(sim: AlipaySimulator, trade: Trade, new: bool) -> None:
    if new:
        sim.schedule_auto_pay(trade)


def _create_fields(params: Mapping[str, str]) -> dict[str, Any]:
    return {
        "notify_url": params.get("notify_url") or None,
        "return_url": params.get("return_url") or None,
    }


def _precreate(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], _: web.Request
) -> dict[str, Any]:
    biz = parse_biz(params)
    trade, new = sim.trades.open(
        "alipay.trade.precreate", account.app_id, account.seller_id, biz, **_create_fields(params)
    )
    _created(sim, trade, new)
    return {**_SUCCESS, "out_trade_no": trade.out_trade_no, "qr_code": trade.code}


def _create(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], _: web.Request
) -> dict[str, Any]:
    biz = parse_biz(params)
    trade, new = sim.trades.open(
        "alipay.trade.create", account.app_id, account.seller_id, biz, **_create_fields(params)
    )
    _created(sim, trade, new)
    return {**_SUCCESS, "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}


def _pay(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], _: web.Request
) -> dict[str, Any]:
    biz = parse_biz(params)
    trade, new = sim.trades.open(
        "alipay.trade.pay", account.app_id, account.seller_id, biz, **_create_fields(params)
    )
    if new and sim.trades.needs_confirmation(trade):
        sim.schedule_password_entry(trade)
    elif new:
        sim.barcode_pays(trade)
    if trade.status == "WAIT_BUYER_PAY":
        return {
            "code": "10003",
            "msg": "order success pay inprocess",
            **trade.summary(),
        }
    answer = {**_SUCCESS, **trade.summary()}
    if trade.gmt_payment is not None:
        answer["gmt_payment"] = format_time(trade.gmt_payment)
    return answer


def _query(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], _: web.Request
) -> dict[str, Any]:
    return sim.trades.find(account.app_id, parse_biz(params)).query_answer()


def _close(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], _: web.Request
) -> dict[str, Any]:
    trade = sim.trades.find(account.app_id, parse_biz(params))
    sim.trades.close(trade)
    return {**_SUCCESS, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}


def _cancel(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], _: web.Request
) -> dict[str, Any]:
    """Undo a trade: close it if unpaid, refund it all if paid."""
    trade = sim.trades.find(account.app_id, parse_biz(params))
    action = "close"
    if trade.status == "TRADE_SUCCESS":
        remaining = trade.total - trade.refunded
        if remaining:
            biz = {"refund_amount": fen_to_yuan(remaining), "out_request_no": trade.out_trade_no}
            refund, _moved = sim.trades.refund(trade, biz)
            sim.notify(trade, refund)
        action = "refund"
    elif trade.status == "WAIT_BUYER_PAY":
        sim.trades.close(trade)
    elif trade.status == "TRADE_FINISHED":
        raise business("ACQ.TRADE_HAS_FINISHED", "交易已完结")
    return {
        **_SUCCESS,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "retry_flag": "N",
        "action": action,
    }


def _refund(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], _: web.Request
) -> dict[str, Any]:
    biz = parse_biz(params)
    trade = sim.trades.find(account.app_id, biz)
    fail = sim.faults.chance(sim.faults.faults.refund_fail_rate)
    refund, moved = sim.trades.refund(trade, biz, fail=fail)
    if moved:
        sim.notify(trade, refund)
    answer = {**_SUCCESS, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
    answer["buyer_logon_id"] = trade.summary().get("buyer_logon_id", "")
    answer["fund_change"] = "Y" if moved else "N"
    answer["refund_fee"] = fen_to_yuan(trade.refunded)
    answer["gmt_refund_pay"] = format_time(refund.at)
    if trade.buyer_id:
        answer["buyer_user_id"] = trade.buyer_id
    return answer


def _refund_query(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], _: web.Request
) -> dict[str, Any]:
    biz = parse_biz(params)
    out_request_no = text(biz, "out_request_no", 64)
    trade = sim.trades.find(account.app_id, biz)
    refund = trade.refunds.get(out_request_no)
    if refund is None:
        # Alipay's way of saying "no such refund": success, and no refund fields.
        return dict(_SUCCESS)
    answer = {
        **_SUCCESS,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "out_request_no": refund.out_request_no,
        "total_amount": fen_to_yuan(trade.total),
        "refund_amount": fen_to_yuan(refund.amount),
        "refund_status": "REFUND_SUCCESS",
    }
    if refund.reason:
        answer["refund_reason"] = refund.reason
    options = biz.get("query_options")
    if isinstance(options, list) and "gmt_refund_pay" in options:
        answer["gmt_refund_pay"] = format_time(refund.at)
    return answer


def _bill_url(
    sim: AlipaySimulator, account: SandboxAccount, params: Mapping[str, str], request: web.Request
) -> dict[str, Any]:
    biz = parse_biz(params)
    bill_type = text(biz, "bill_type", 16)
    if bill_type not in ("trade", "signcustomer"):
        raise invalid("bill_type", "须为 trade 或 signcustomer")
    raw_date = text(biz, "bill_date", 10)
    try:
        day = date.fromisoformat(raw_date) if len(raw_date) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise invalid("bill_date", "须为 yyyy-MM-dd")
    if day > sim.trades.now().date():
        raise business("isp.bill_not_exist", "账单不存在")
    content = bill.statement(sim.trades, knobs(sim), account.app_id, account.seller_id, day)
    if content is None:
        raise business("isp.bill_not_exist", "账单不存在")
    token = sim.bills.issue(bill.Bill(account.app_id, day, content))
    query = urlencode(
        {
            "bizType": bill_type,
            "userId": account.seller_id,
            "fileType": "csv.zip",
            "bizDates": day.strftime("%Y%m%d"),
            "downloadFileName": f"{account.seller_id}0156_{day:%Y%m%d}.csv.zip",
            "token": token,
        }
    )
    url = f"{public_base(request, sim)}/downloadBillFile.resource?{query}"
    return {**_SUCCESS, "bill_download_url": url}


METHODS: Mapping[str, MethodHandler] = {
    "alipay.trade.precreate": _precreate,
    "alipay.trade.create": _create,
    "alipay.trade.pay": _pay,
    "alipay.trade.query": _query,
    "alipay.trade.close": _close,
    "alipay.trade.cancel": _cancel,
    "alipay.trade.refund": _refund,
    "alipay.trade.fastpay.refund.query": _refund_query,
    "alipay.data.dataservice.bill.downloadurl.query": _bill_url,
}
OPERATIONS: Mapping[str, Operation] = {
    "alipay.trade.precreate": "create",
    "alipay.trade.create": "create",
    "alipay.trade.pay": "create",
    "alipay.trade.query": "query",
    "alipay.trade.close": "close",
    "alipay.trade.cancel": "close",
    "alipay.trade.refund": "refund",
    "alipay.trade.fastpay.refund.query": "query_refund",
}
"""What `Faults.only` calls each method (the statement is none of them)."""
