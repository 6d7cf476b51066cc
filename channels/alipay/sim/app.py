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

The statement's `bill_download_url` points at `/downloadBillFile.resource?...&token=`.
Barcode auth codes starting with `26` ask for the buyer's password (10003, WAIT_BUYER_PAY).

Control plane (sandbox only): `GET /sim/accounts`, `POST /sim/buyer/pay|decline {"code"}` (the
qr_code, the page/wap URL, the app order string, the jsapi trade_no, or a barcode auth code
waiting for the buyer), `PUT|GET /sim/faults`, `GET /sim/orders/{out_trade_no}`.

Paid, declined and refunded trades are notified (`trade_status_sync` form posts, signed) to
their `notify_url` until the merchant answers exactly `success`, on Alipay's schedule
(4m, 10m, 10m, 1h, 2h, 6h, 15h) scaled by the settings' time factor. Faults apply to server
calls (browser pages are always served): outage is HTTP 503, errors are signed 20000
isp.unknow-error answers with nothing done, timeouts are processed and answered late;
`password_entry_ms` is how long a barcode buyer takes to confirm; `refund_fail_rate` refuses
refunds (ACQ.SELLER_BALANCE_NOT_ENOUGH) since Alipay refunds synchronously, which is also
why `refund_delay_ms` has nothing to delay here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from channels.alipay.crypto import ERROR_RESPONSE, response_key
from channels.alipay.protocol.wire import fen_to_yuan
from channels.alipay.sandbox import SandboxAccount
from channels.alipay.sim import statements
from channels.alipay.sim.handlers import METHODS, OPERATIONS
from channels.alipay.sim.orders import (
    BROWSER_METHODS,
    AlipayError,
    Trade,
    business,
)
from channels.alipay.sim.state import SIMULATOR, AlipaySimulator, unavailable
from channels.sim import pages
from channels.sim.control import accounts_route, buyer_routes
from channels.sim.kit import (
    FaultBox,
    SimulatorSettings,
    control_error,
    fault_routes,
)

_log = logging.getLogger(__name__)

_FAULTS = web.AppKey("alipay_faults", FaultBox)
BRAND = "支付宝 收银台"


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
    claimed = params.get("app_id")
    fault = await sim.faults.before_protocol_call(OPERATIONS.get(api_method), claimed)
    if fault == "outage":
        return web.Response(status=503, text="Service Unavailable")
    account: SandboxAccount | None = None
    name = response_key(api_method) if api_method in METHODS else ERROR_RESPONSE
    try:
        account = sim.account_for(params)
        sim.check_request(account, params)
        if fault == "error":
            raise unavailable()
        payload = sim.reported(METHODS[api_method](sim, account, params, request))
    except AlipayError as exc:
        if exc.gateway:
            name = ERROR_RESPONSE
        payload = exc.payload()
    except Exception:
        # A simulator bug still answers like Alipay would: signed, "unknown, query again".
        _log.exception("Alipay simulator failed on %s", api_method)
        payload = unavailable().payload()
    if fault == "timeout":
        await sim.faults.hang(claimed)
    return _answer(sim.answer(account, name, payload))


def _cashier(request: web.Request, sim: AlipaySimulator, params: Mapping[str, str]) -> web.Response:
    """What a buyer's browser sees on opening a page/wap URL: the trade, Pay and Decline; once
    paid, back to the merchant's `return_url` as Alipay's cashier does."""
    try:
        trade = sim.open_signed(params)
    except AlipayError as exc:
        return pages.error_page(BRAND, exc.sub_code or exc.code, exc.sub_msg or exc.msg)
    # The buyer's code is the signed query, whether the browser came by GET or by a form POST.
    return pages.cashier(
        brand=BRAND,
        title=trade.subject,
        rows=[("订单号", trade.out_trade_no)],
        amount=fen_to_yuan(trade.total),
        code=f"{request.path}?{urlencode(params)}",
        state=trade.status,
        state_field="trade_status",
        paid=("TRADE_SUCCESS", "TRADE_FINISHED"),
        back=trade.return_url or None,
    )


async def _download_bill(request: web.Request) -> web.Response:
    bill = request.app[SIMULATOR].bills.get(request.query.get("token", ""))
    if bill is None:
        return web.Response(status=404, text="bill not found or expired")
    return web.Response(body=bill.content, content_type="application/zip")


def _buyer_trade(request: web.Request, code: str) -> Trade | web.Response | None:
    try:
        return request.app[SIMULATOR].resolve_code(code)
    except AlipayError as exc:
        return control_error(400, f"{exc.sub_code or exc.code}: {exc.sub_msg or exc.msg}", "code")


def _buyer_answer(trade: Trade) -> dict[str, object]:
    return {
        "out_trade_no": trade.out_trade_no,
        "trade_no": trade.trade_no,
        "trade_status": trade.status,
    }


_BUYER_ROUTES = buyer_routes(
    find=_buyer_trade,
    pay=lambda request, trade: request.app[SIMULATOR].buyer_pays(trade),
    decline=lambda request, trade: request.app[SIMULATOR].buyer_declines(trade),
    answer=_buyer_answer,
    error=AlipayError,
    message=lambda exc: exc.sub_msg or exc.msg,
    missing="no trade has this code",
)


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
            accounts_route(SIMULATOR),
            *_BUYER_ROUTES,
            web.get("/sim/orders/{out_trade_no}", _sim_order),
            pages.static_route(),
            *statements.routes(),
            *fault_routes(_FAULTS),
        ]
    )
    return app
