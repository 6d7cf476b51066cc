"""A standalone WeChat Pay API v3 simulator, faithful to the wire protocol at the real paths.

Protocol (every answer signed with the platform key and carrying `Request-ID`; requests must be
signed with the merchant key over the raw path and raw body):

    POST /v3/pay/transactions/{native|h5|jsapi|app|codepay}
    GET  /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=
    GET  /v3/pay/transactions/id/{transaction_id}?mchid=
    POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close          -> 204
    POST /v3/refund/domestic/refunds
    GET  /v3/refund/domestic/refunds/{out_refund_no}
    GET  /v3/bill/tradebill|fundflowbill?bill_date=YYYY-MM-DD, then its download_url

Control plane (sandbox only): `GET /sim/accounts`, `POST /sim/buyer/pay|decline {"code"}`,
`PUT|GET /sim/faults`, `GET /sim/orders/{out_trade_no}`, `GET /sim/refunds/{out_refund_no}`,
and the buyer's pages: the h5 cashier, the in-app pay sheet and the web authorisation that
gives a page the buyer's openid (`channels.wechat.sim.oauth`); `/sim/statement/...`
(channels.sim.statements).

A paid order's `TRANSACTION.SUCCESS` notification, and a finished refund's `REFUND.SUCCESS` (or
`REFUND.ABNORMAL`), is encrypted with the APIv3 key, signed, and posted to the `notify_url`
until the merchant answers 2xx, on WeChat's retry schedule scaled by the settings' time factor.

Codepay: a payment code must look like WeChat's (18 digits starting 10-15, otherwise 400
`AUTH_CODE_INVALID`); codes starting 15 make the buyer enter a password: the answer is 202
`USERPAYING` and the order waits until `POST /sim/buyer/pay {"code": <auth_code>}` or the
`password_entry_ms` fault's delay. Other codes pay at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from channels.sim import pages
from channels.sim.control import accounts_route, buyer_routes
from channels.sim.kit import (
    FaultBox,
    Operation,
    SimulatorSettings,
    control_error,
    fault_routes,
)
from channels.wechat.crypto import VerificationError, parse_authorization
from channels.wechat.protocol.wire import dump_json
from channels.wechat.sim import oauth, statements
from channels.wechat.sim.orders import KINDS, Order, WeChatError, param_error
from channels.wechat.sim.state import ACCOUNT, SIMULATOR, WeChatSimulator

_log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FAULTS = web.AppKey("wechat_faults", FaultBox)


def _json(status: int, payload: Any) -> web.Response:
    return web.Response(status=status, body=dump_json(payload), content_type="application/json")


def _operation(request: web.Request) -> Operation:
    """Which channel operation a `/v3/` call is, for faults aimed at some operations."""
    refund = request.path.startswith("/v3/refund/")
    if request.method == "GET":
        return "query_refund" if refund else "query"
    if refund:
        return "refund"
    return "close" if request.path.endswith("/close") else "create"


def _claimed_mchid(request: web.Request) -> str | None:
    """The merchant a call says it is from (not yet verified), for faults set per account."""
    try:
        return parse_authorization(request.headers.get("Authorization", "")).mchid
    except VerificationError:
        return None


@web.middleware
async def _protocol_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Faults, authentication, WeChat error bodies and answer signatures for `/v3/`."""
    sim = request.app[SIMULATOR]
    if not request.path.startswith("/v3/"):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers["Request-ID"] = sim.request_id()
            raise
        response.headers["Request-ID"] = sim.request_id()
        return response
    request_id = sim.request_id()
    claimed = _claimed_mchid(request)
    fault = await sim.faults.before_protocol_call(_operation(request), claimed)
    account = sim.default_account()
    try:
        if fault == "outage":
            raise WeChatError(503, "SYSTEM_ERROR", "系统繁忙，请稍后重试")
        if fault == "error":
            raise WeChatError(500, "SYSTEM_ERROR", "系统异常，请稍后重试")
        account = await sim.authenticate(request)
        request[ACCOUNT] = account
        answer = await handler(request)
    except WeChatError as exc:
        answer = _json(exc.status, exc.body())
    except web.HTTPException as exc:
        code = "NOT_FOUND" if exc.status == 404 else "INVALID_REQUEST"
        answer = _json(exc.status, {"code": code, "message": exc.reason})
    except Exception:
        # A simulator bug still answers like WeChat would: signed, with a Request-ID.
        _log.exception("WeChat simulator failed on %s %s", request.method, request.path)
        answer = _json(500, {"code": "SYSTEM_ERROR", "message": "系统异常，请稍后重试"})
    if fault == "timeout":
        await sim.faults.hang(claimed)
    assert isinstance(answer, web.Response)
    body = answer.body if isinstance(answer.body, bytes) else b""
    answer.headers.update(sim.sign(account, body))
    answer.headers["Request-ID"] = request_id
    return answer


async def _read_body(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read())
    except (ValueError, RecursionError):
        raise WeChatError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(data, dict):
        raise WeChatError(400, "PARAM_ERROR", "请求体须为 JSON 对象")
    return data


def _own_mchid(request: web.Request, mchid: object, location: str) -> None:
    if not isinstance(mchid, str) or not mchid:
        raise param_error("/mchid", "必填", location=location)
    if mchid != request[ACCOUNT].mchid:
        raise WeChatError(400, "INVALID_REQUEST", "mchid 与认证信息中的商户号不一致")


def _public_base(request: web.Request, sim: WeChatSimulator) -> str:
    return sim.settings.public_base_url or f"{request.scheme}://{request.host}"


async def _create_order(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    kind = request.match_info["kind"]
    account = request[ACCOUNT]
    body = await _read_body(request)
    base = _public_base(request, sim)
    order, new = sim.orders.create(kind, account.mchid, account.credentials.appid, body, base)
    if new and kind == "codepay":
        sim.scan_payment_code(order)
    elif new:
        sim.schedule_auto_pay(order)
    if kind == "codepay" and order.trade_state == "PAYERROR":
        raise WeChatError(403, "NOT_ENOUGH", "用户余额不足")
    if kind == "codepay" and order.trade_state == "USERPAYING":
        # Accepted, not finished: the merchant queries until the buyer has entered it.
        return _json(202, {"code": "USERPAYING", "message": "需要用户输入支付密码"})
    return _json(200, sim.reported(order.create_answer()))


async def _query_by_out_trade_no(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    mchid = request.query.get("mchid")
    _own_mchid(request, mchid, "query")
    order = sim.orders.get(request[ACCOUNT].mchid, request.match_info["out_trade_no"])
    if order is None:
        raise WeChatError(404, "ORDER_NOT_EXIST", "订单不存在")
    return _json(200, sim.reported(order.transaction()))


async def _query_by_transaction_id(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    _own_mchid(request, request.query.get("mchid"), "query")
    order = sim.orders.get_by_transaction(request[ACCOUNT].mchid, request.match_info["id"])
    if order is None:
        raise WeChatError(404, "ORDER_NOT_EXIST", "订单不存在")
    return _json(200, sim.reported(order.transaction()))


async def _close_order(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    body = await _read_body(request)
    _own_mchid(request, body.get("mchid"), "body")
    order = sim.orders.get(request[ACCOUNT].mchid, request.match_info["out_trade_no"])
    if order is None:
        raise WeChatError(404, "ORDER_NOT_EXIST", "订单不存在")
    sim.orders.close(order)
    return web.Response(status=204)


async def _apply_refund(request: web.Request) -> web.Response:
    """`POST /v3/refund/domestic/refunds`: accept a refund, or return the one already made."""
    sim = request.app[SIMULATOR]
    body = await _read_body(request)
    refund = sim.apply_refund(request[ACCOUNT].mchid, body)
    return _json(200, sim.reported(refund.answer()))


async def _query_refund(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    refund = sim.refunds.get(request[ACCOUNT].mchid, request.match_info["out_refund_no"])
    if refund is None:
        raise WeChatError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return _json(200, sim.reported(refund.answer()))


def _buyer_answer(order: Order) -> dict[str, object]:
    return {
        "out_trade_no": order.out_trade_no,
        "trade_state": order.trade_state,
        "transaction_id": order.transaction_id,
    }


_BUYER_ROUTES = buyer_routes(
    find=lambda request, code: request.app[SIMULATOR].orders.find_by_code(code),
    pay=lambda request, order: request.app[SIMULATOR].buyer_pays(order),
    decline=lambda request, order: request.app[SIMULATOR].orders.decline(order),
    answer=_buyer_answer,
    error=WeChatError,
    message=lambda exc: exc.message,
)


async def _sim_order(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    mchid = request.query.get("mchid") or sim.default_account().mchid
    order = sim.orders.get(mchid, request.match_info["out_trade_no"])
    if order is None:
        return control_error(404, "no such order", "out_trade_no")
    view = order.as_dict()
    view["refunds"] = [refund.out_refund_no for refund in sim.refunds.of_order(order)]
    return web.json_response(view)


async def _sim_refund(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    mchid = request.query.get("mchid") or sim.default_account().mchid
    refund = sim.refunds.get(mchid, request.match_info["out_refund_no"])
    if refund is None:
        return control_error(404, "no such refund", "out_refund_no")
    return web.json_response(refund.as_dict())


async def _h5_page(request: web.Request) -> web.Response:
    """The page an h5_url opens: the simulated WeChat cashier, with pay and decline buttons."""
    order = request.app[SIMULATOR].orders.find_by_code(request.query.get("prepay_id", ""))
    if order is None:
        return pages.error_page("微信支付", "ORDER_NOT_EXIST", "订单不存在", 404)
    # WeChat returns an h5 buyer to the merchant's `redirect_url` when one was appended.
    back = request.query.get("redirect_url", "")
    return pages.cashier(
        brand="微信支付",
        title=order.description,
        rows=[("商户单号", order.out_trade_no)],
        amount=f"{order.total // 100}.{order.total % 100:02d}",
        code=order.code,
        state=order.trade_state,
        state_field="trade_state",
        paid=("SUCCESS",),
        back=back if urlsplit(back).scheme in ("http", "https") else None,
    )


def build_app(settings: SimulatorSettings) -> web.Application:
    """The simulator as an aiohttp application; keys are loaded (or made) at start-up."""
    sim = WeChatSimulator(settings)
    app = web.Application(middlewares=[_protocol_middleware])
    app[SIMULATOR] = sim
    app.cleanup_ctx.append(sim.lifecycle)
    app.on_shutdown.append(sim.on_shutdown)
    kinds = "|".join(KINDS)
    app.add_routes(
        [
            web.post(f"/v3/pay/transactions/{{kind:{kinds}}}", _create_order),
            web.get("/v3/pay/transactions/out-trade-no/{out_trade_no}", _query_by_out_trade_no),
            web.get("/v3/pay/transactions/id/{id}", _query_by_transaction_id),
            web.post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", _close_order),
            web.post("/v3/refund/domestic/refunds", _apply_refund),
            web.get("/v3/refund/domestic/refunds/{out_refund_no}", _query_refund),
            *statements.routes(),
            accounts_route(SIMULATOR),
            *_BUYER_ROUTES,
            web.get("/sim/orders/{out_trade_no}", _sim_order),
            web.get("/sim/refunds/{out_refund_no}", _sim_refund),
            web.get("/sim/h5/checkmweb", _h5_page),
            *oauth.routes(app),
            pages.static_route(),
            *fault_routes(_FAULTS),
        ]
    )
    app[_FAULTS] = sim.faults
    return app
