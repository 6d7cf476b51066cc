"""The WeChat Pay simulator's statement routes: the bills, their download, and injection.

    GET /v3/bill/tradebill?bill_date=YYYY-MM-DD[&bill_type=ALL|SUCCESS|REFUND][&tar_type=GZIP]
    GET /v3/bill/fundflowbill?bill_date=YYYY-MM-DD[&account_type=BASIC][&tar_type=GZIP]
        → {"hash_type": "SHA1", "hash_value", "download_url"}
    GET /v3/billdownload/file?token=...    the file (gzip when asked), signed like any answer

The day may be today (the statement so far: a sandbox convenience). `/sim/statement/...`
(`channels.sim.statements`) injects coupons, portal refunds, outside orders and times.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from datetime import date, datetime

from aiohttp import web

from channels.sim.statements import StatementHooks, knobs, statement_routes
from channels.wechat.protocol.wire import CHINA_TIME, dump_json
from channels.wechat.sim import bill
from channels.wechat.sim.orders import Order, WeChatError, param_error
from channels.wechat.sim.state import ACCOUNT, SIMULATOR, WeChatSimulator

OUTSIDE_AUTH_CODE = "134567890123456789"
"""The payment code of a shop-counter payment made without the router."""


def _json(payload: dict[str, str]) -> web.Response:
    return web.Response(body=dump_json(payload), content_type="application/json")


def _day(request: web.Request, sim: WeChatSimulator) -> date:
    raw = request.query.get("bill_date", "")
    try:
        day = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise param_error("/bill_date", "须为 YYYY-MM-DD", raw or None, location="query")
    if day > sim.orders.now().date():
        raise WeChatError(400, "INVALID_REQUEST", "账单日期不能晚于今天")
    return day


def _issue(
    request: web.Request, sim: WeChatSimulator, lines: Iterable[str], mchid: str
) -> web.Response:
    tar_type = request.query.get("tar_type")
    if tar_type not in (None, "GZIP"):
        raise param_error("/tar_type", "仅支持 GZIP", tar_type, location="query")
    issued = bill.Bill(mchid, bill.as_file(lines), gzipped=tar_type == "GZIP")
    token = sim.bills.issue(issued)
    base = sim.settings.public_base_url or f"{request.scheme}://{request.host}"
    url = f"{base}/v3/billdownload/file?token={token}"
    return _json({"hash_type": "SHA1", "hash_value": issued.sha1, "download_url": url})


def _entries(sim: WeChatSimulator, mchid: str, day: date) -> list[bill.Entry]:
    found = bill.entries(sim.orders, sim.refunds, knobs(sim), mchid, day)
    if not found:
        raise WeChatError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
    return found


async def trade_bill(request: web.Request) -> web.Response:
    """`GET /v3/bill/tradebill`: the day's trade bill, as a hash and a download URL."""
    sim = request.app[SIMULATOR]
    mchid = request[ACCOUNT].mchid
    day = _day(request, sim)
    bill_type = request.query.get("bill_type", "ALL")
    if bill_type not in bill.BILL_TYPES:
        raise param_error("/bill_type", "须为 ALL、SUCCESS 或 REFUND", bill_type, location="query")
    rows = _entries(sim, mchid, day)
    return _issue(request, sim, bill.render_trade_bill(rows, bill_type), mchid)


async def fundflow_bill(request: web.Request) -> web.Response:
    """`GET /v3/bill/fundflowbill`: the basic account's movements of the day."""
    sim = request.app[SIMULATOR]
    mchid = request[ACCOUNT].mchid
    day = _day(request, sim)
    account_type = request.query.get("account_type", "BASIC")
    if account_type not in bill.ACCOUNT_TYPES:
        raise param_error("/account_type", "须为 BASIC、OPERATION 或 FEES", location="query")
    rows = _entries(sim, mchid, day) if account_type == "BASIC" else []
    return _issue(request, sim, bill.render_fundflow_bill(rows), mchid)


async def download_bill(request: web.Request) -> web.Response:
    """The statement file itself (gzip when asked for), for the merchant that asked."""
    issued = request.app[SIMULATOR].bills.get(request.query.get("token", ""))
    if issued is None or issued.mchid != request[ACCOUNT].mchid:
        raise WeChatError(404, "RESOURCE_NOT_EXISTS", "账单文件不存在或已过期")
    return web.Response(body=issued.download(), content_type="application/octet-stream")


def _find(sim: WeChatSimulator, mchid: str, out_trade_no: str) -> Order | None:
    order = sim.orders.get(mchid, out_trade_no)
    return order if order is not None and order.success_time is not None else None


def _digits(sim: WeChatSimulator, count: int) -> str:
    return "".join(sim.rng.choice(string.digits) for _ in range(count))


def _portal_refund(sim: WeChatSimulator, order: Order, amount: int) -> dict[str, object]:
    """A refund the merchant made in WeChat Pay's merchant portal: done at once."""
    stamp = sim.orders.now().astimezone(CHINA_TIME).strftime("%Y%m%d")
    body = {
        "out_trade_no": order.out_trade_no,
        "out_refund_no": f"{stamp}{_digits(sim, 12)}",
        "amount": {"refund": amount, "total": order.total, "currency": order.currency},
    }
    try:
        refund, _ = sim.refunds.apply(sim.orders, order.mchid, body)
    except WeChatError as exc:
        raise ValueError(exc.message) from None
    sim.refunds.finish(refund, succeeded=True)
    return {"refund_no": refund.out_refund_no, "channel_refund_no": refund.refund_id}


def _outside_order(
    sim: WeChatSimulator, mchid: str, amount: int, paid_at: datetime | None
) -> dict[str, object]:
    """A payment at the shop's counter (a payment code), made without the router."""
    account = sim.accounts[mchid]
    body = {
        "appid": account.credentials.appid,
        "mchid": mchid,
        "description": "门店收款",
        "out_trade_no": f"pos{_digits(sim, 20)}",
        "amount": {"total": amount, "currency": "CNY"},
        "payer": {"auth_code": OUTSIDE_AUTH_CODE},
    }
    order, _ = sim.orders.create("codepay", mchid, account.credentials.appid, body, "")
    sim.orders.pay(order)
    if paid_at is not None:
        order.success_time = paid_at
    return {"order_no": order.out_trade_no, "channel_trade_no": order.transaction_id}


def _move(order: Order, paid_at: datetime) -> None:
    order.success_time = paid_at


HOOKS = StatementHooks[WeChatSimulator, Order](
    find=_find,
    amount=lambda order: order.total,
    portal_refund=_portal_refund,
    outside_order=_outside_order,
    move_payment=_move,
)


def routes() -> list[web.RouteDef]:
    """Every statement route of the WeChat Pay simulator."""
    return [
        web.get("/v3/bill/tradebill", trade_bill),
        web.get("/v3/bill/fundflowbill", fundflow_bill),
        web.get("/v3/billdownload/file", download_bill),
        *statement_routes(SIMULATOR, HOOKS),
    ]
