"""A standalone Alipay OpenAPI simulator, faithful to the wire protocol at the real path.

Protocol: one path, `/gateway.do`, taking GET query strings and POST forms (or both at once,
as Alipay's Java SDK sends them). The app's RSA2 signature is checked (a bad one is
`error_response` 40002 isv.invalid-signature); every answer is
`{"<method>_response": {...}, "sign": "..."}` signed with Alipay's key over the exact bytes of
the `_response` object. Methods:

    alipay.trade.precreate      qr_code              alipay.trade.query
    alipay.trade.create         trade_no (jsapi)     alipay.trade.close
    alipay.trade.pay            barcode              alipay.trade.cancel
    alipay.trade.page.pay       \\  a browser opens   alipay.trade.refund
    alipay.trade.wap.pay         > these: cashier    alipay.trade.fastpay.refund.query
    alipay.trade.app.pay        /  page              alipay.data.dataservice.bill.downloadurl.query

Control plane (sandbox only): `GET /sim/accounts`, `POST /sim/buyer/pay|decline {"code"}` (the
qr_code, the page/wap URL, the app order string, the jsapi trade_no, or a barcode auth code
waiting for the buyer), `PUT|GET /sim/faults`, `GET /sim/orders/{out_trade_no}`.

Paid, declined and refunded trades are notified (`trade_status_sync` form posts, signed) to
their `notify_url` until the merchant answers exactly `success`, on Alipay's schedule
(4m, 10m, 10m, 1h, 2h, 6h, 15h) scaled by the settings' time factor. Faults apply to server
calls (browser pages are always served): outage is HTTP 503, errors are signed 20000
isp.unknow-error answers with nothing done, timeouts are processed and answered late.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from channels.alipay import sim_bill
from channels.alipay.amounts import fen_to_yuan
from channels.alipay.crypto import ERROR_RESPONSE, response_key
from channels.alipay.protocol import format_time
from channels.alipay.sandbox import SandboxAccount
from channels.alipay.sim_state import SIMULATOR, AlipaySimulator, parse_biz, unavailable
from channels.alipay.sim_trades import (
    BROWSER_METHODS,
    CREATE_METHODS,
    AlipayError,
    Trade,
    business,
    invalid,
    text,
)
from channels.simkit import (
    FaultBox,
    Operation,
    SimulatorSettings,
    control_error,
    fault_routes,
    read_json_object,
)

_log = logging.getLogger(__name__)

MethodHandler = Callable[
    [AlipaySimulator, SandboxAccount, Mapping[str, str], web.Request], dict[str, Any]
]
_FAULTS = web.AppKey("alipay_faults", FaultBox)
_SUCCESS = {"code": "10000", "msg": "Success"}


def _public_base(request: web.Request, sim: AlipaySimulator) -> str:
    return sim.settings.public_base_url or f"{request.scheme}://{request.host}"


async def _read_params(request: web.Request) -> dict[str, str]:
    """Query-string and form parameters together, decoded as UTF-8. Raises `AlipayError`."""
    sources = [request.raw_path.partition("?")[2]]
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        raw = await request.read()
        try:
            sources.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise business("ACQ.INVALID_PARAMETER", "请求不是 UTF-8 编码") from None
    params: dict[str, str] = {}
    for source in sources:
        try:
            pairs = parse_qsl(source, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise business("ACQ.INVALID_PARAMETER", "参数不是 UTF-8 编码") from None
        for name, value in pairs:
            params[name] = value
    return params


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
    content = sim_bill.statement(sim.trades, account.app_id, account.seller_id, day)
    if content is None:
        raise business("isp.bill_not_exist", "账单不存在")
    token = sim.bills.issue(sim_bill.Bill(account.app_id, day, content))
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
    url = f"{_public_base(request, sim)}/downloadBillFile.resource?{query}"
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
assert set(CREATE_METHODS) - set(METHODS) == set(BROWSER_METHODS)


def _answer(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def _gateway(request: web.Request) -> web.StreamResponse:
    """`/gateway.do`: server calls answered in JSON, browser methods with the cashier page."""
    sim = request.app[SIMULATOR]
    try:
        params = await _read_params(request)
    except AlipayError as exc:
        return _answer(sim.answer(None, ERROR_RESPONSE, exc.payload()))
    api_method = params.get("method", "")
    if api_method in BROWSER_METHODS:
        return _cashier(request, sim, params)
    fault = await sim.faults.before_protocol_call(OPERATIONS.get(api_method))
    if fault == "outage":
        return web.Response(status=503, text="Service Unavailable")
    account: SandboxAccount | None = None
    name = response_key(api_method) if api_method in METHODS else ERROR_RESPONSE
    try:
        account = sim.account_for(params)
        sim.check_request(account, params)
        if fault == "error":
            raise unavailable()
        payload = METHODS[api_method](sim, account, params, request)
    except AlipayError as exc:
        if exc.gateway:
            name = ERROR_RESPONSE
        payload = exc.payload()
    except Exception:
        # A simulator bug still answers like Alipay would: signed, "unknown, query again".
        _log.exception("Alipay simulator failed on %s", api_method)
        payload = unavailable().payload()
    if fault == "timeout":
        await sim.faults.hang()
    return _answer(sim.answer(account, name, payload))


def _cashier(request: web.Request, sim: AlipaySimulator, params: Mapping[str, str]) -> web.Response:
    """What a buyer's browser sees on opening a page/wap URL: the trade, Pay and Decline."""
    try:
        trade = sim.open_signed(params)
    except AlipayError as exc:
        page = f"""<!doctype html><meta charset="utf-8"><title>支付宝 (simulator)</title>
<h1>支付宝 (simulator)</h1><p>错误代码 {html.escape(exc.sub_code or exc.code)}</p>
<p>{html.escape(exc.sub_msg or exc.msg)}</p>"""
        return web.Response(status=400, text=page, content_type="text/html")
    # The buyer's code is the signed query, whether the browser came by GET or by a form POST.
    code = html.escape(json.dumps(f"{request.path}?{urlencode(params)}"))
    total = fen_to_yuan(trade.total)
    back = html.escape(trade.return_url or "")
    page = f"""<!doctype html><meta charset="utf-8"><title>支付宝 收银台 (simulator)</title>
<h1>{html.escape(trade.subject)}</h1><p>¥{total} · {html.escape(trade.out_trade_no)}
· <b id="state">{trade.status}</b></p>
<button onclick="act('pay')">Pay</button> <button onclick="act('decline')">Decline</button>
<script>async function act(what) {{
  const r = await fetch('/sim/buyer/' + what, {{method: 'POST',
    headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{code: {code}}})}});
  const j = await r.json(); document.getElementById('state').textContent =
    j.trade_status || (j.error && j.error.message);
  if (j.trade_status === 'TRADE_SUCCESS' && "{back}") location.href = "{back}"; }}</script>"""
    return web.Response(text=page, content_type="text/html")


async def _download_bill(request: web.Request) -> web.Response:
    bill = request.app[SIMULATOR].bills.get(request.query.get("token", ""))
    if bill is None:
        return web.Response(status=404, text="bill not found or expired")
    return web.Response(body=bill.content, content_type="application/zip")


async def _sim_accounts(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    bundles = [account.credentials.bundle() for account in sim.accounts.values()]
    return web.json_response({"accounts": bundles})


async def _buyer_trade(request: web.Request) -> Trade | web.Response:
    data = await read_json_object(request)
    if isinstance(data, web.Response):
        return data
    code = data.get("code")
    if not isinstance(code, str) or not code:
        return control_error(400, "code: required string", "code")
    try:
        trade = request.app[SIMULATOR].resolve_code(code)
    except AlipayError as exc:
        return control_error(400, f"{exc.sub_code or exc.code}: {exc.sub_msg or exc.msg}", "code")
    if trade is None:
        return control_error(404, "no trade has this code", "code")
    return trade


def _buyer_answer(trade: Trade) -> web.Response:
    return web.json_response(
        {
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
            "trade_status": trade.status,
        }
    )


async def _buyer_pay(request: web.Request) -> web.Response:
    trade = await _buyer_trade(request)
    if isinstance(trade, web.Response):
        return trade
    try:
        request.app[SIMULATOR].buyer_pays(trade)
    except AlipayError as exc:
        return control_error(409, exc.sub_msg or exc.msg)
    return _buyer_answer(trade)


async def _buyer_decline(request: web.Request) -> web.Response:
    trade = await _buyer_trade(request)
    if isinstance(trade, web.Response):
        return trade
    try:
        request.app[SIMULATOR].buyer_declines(trade)
    except AlipayError as exc:
        return control_error(409, exc.sub_msg or exc.msg)
    return _buyer_answer(trade)


async def _sim_order(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    app_id = request.query.get("app_id") or sim.default_account().app_id
    trade = sim.trades.get(app_id, request.match_info["out_trade_no"])
    if trade is None:
        return control_error(404, "no such trade", "out_trade_no")
    return web.json_response(trade.as_dict())


def build_app(settings: SimulatorSettings) -> web.Application:
    """The simulator as an aiohttp application; keys are loaded (or made) at start-up."""
    sim = AlipaySimulator(settings, frozenset(METHODS) | frozenset(BROWSER_METHODS))
    app = web.Application()
    app[SIMULATOR] = sim
    app[_FAULTS] = sim.faults
    app.cleanup_ctx.append(sim.lifecycle)
    app.on_shutdown.append(sim.on_shutdown)
    app.add_routes(
        [
            web.get("/gateway.do", _gateway),
            web.post("/gateway.do", _gateway),
            web.get("/downloadBillFile.resource", _download_bill),
            web.get("/sim/accounts", _sim_accounts),
            web.post("/sim/buyer/pay", _buyer_pay),
            web.post("/sim/buyer/decline", _buyer_decline),
            web.get("/sim/orders/{out_trade_no}", _sim_order),
            *fault_routes(_FAULTS),
        ]
    )
    return app
