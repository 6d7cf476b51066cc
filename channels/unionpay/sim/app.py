"""A standalone UnionPay ACP 5.1.0 simulator, faithful to the wire protocol at the real paths.

Protocol (URL-encoded form posts, signed by the merchant's registered certificate; every
answer is raw `k=v&...` signed with the channel's certificate, sent as `signPubKeyCert`):

    POST /gateway/api/frontTransReq.do   the buyer's browser: web (07) and h5 (08) consume;
                                         answers the cashier page (Pay / Decline)
    POST /gateway/api/appTransReq.do     app consume: answers a `tn`
    POST /gateway/api/backTransReq.do    QR code application (01/07), payment-code consume
                                         (01/06, `qrNo`), refund (04), void (31)
    POST /gateway/api/queryTrans.do      status by `orderId` + `txnTime`
    POST /gateway/api/fileTransRequest.do  the day's settlement file (txnType 76)

Control plane (sandbox only): `GET /sim/accounts`, `POST /sim/buyer/pay|decline {"code"}`
(the tn, the qrCode, the form's orderId, or a payment code waiting for the buyer),
`PUT|GET /sim/faults`, `GET /sim/orders/{orderId}`, and the statement of the day
`GET /sim/statements/{YYYYMMDD}`, and `/sim/statement/...` (channels.sim.statements).

Paid consumes and refunds are notified to their `backUrl` (a signed form post) until the
merchant answers HTTP 200 (or 302): five attempts, 1, 2, 4 and 5 minutes apart, scaled by the
settings' time factor. Failed payments are not notified, as at UnionPay.

Payment codes (`qrNo`: 19 digits starting 62) pay at once up to ¥1000; above it the buyer enters
a password: the answer is `05` and the payment waits for the `password_entry_ms` fault's delay
or `POST /sim/buyer/pay {"code": <qrNo>}`. Refunds are accepted (`00`) and end after the
`refund_delay_ms` fault's delay; `refund_fail_rate` makes some fail. The amounts 303, 304 and 305
fen answer `03`/`04`/`05` (see `channels.unionpay.sim.orders`). Closing an unpaid order is a
void (`txnType` 31) naming it by `origOrderId` + `origTxnTime`: afterwards it cannot be paid,
even when the buyer had not submitted its form yet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from aiohttp import web

from channels.sim.control import accounts_route, buyer_routes
from channels.sim.kit import (
    FaultBox,
    SimulatorSettings,
    control_error,
    fault_routes,
)
from channels.sim.pages import static_route
from channels.sim.statements import knobs
from channels.unionpay.protocol import codes, wire
from channels.unionpay.sim import bill, pages, statements
from channels.unionpay.sim.orders import (
    Txn,
    UnionPayError,
    check_amount,
    check_common,
    check_consume,
    check_identity,
    check_url,
    kind_of,
    require,
)
from channels.unionpay.sim.state import SIMULATOR, UnionPaySimulator

_log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FAULTS = web.AppKey("unionpay_faults", FaultBox)
_ECHO = (
    "version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType",
    "merId", "orderId", "txnTime",
)  # fmt: skip
_FIELDS: web.RequestKey[dict[str, str]] = web.RequestKey("unionpay_fields")
_PATH = "/gateway/api/"
_DAY = re.compile(r"[0-9]{8}")
"""A statement day, `YYYYMMDD` in ASCII digits (`int()` would also read `٢٠٢٤`)."""


def _answer(sim: UnionPaySimulator, fields: Mapping[str, str]) -> web.Response:
    body = wire.encode_answer(sim.sign(sim.reported(fields)))
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


def _refusal(request_fields: Mapping[str, str], error: UnionPayError) -> dict[str, str]:
    out = {k: request_fields[k] for k in _ECHO if request_fields.get(k)}
    out.update(respCode=error.code, respMsg=error.message)
    return out


def _claimed_mer_id(body: bytes) -> str | None:
    """The merchant a call says it is from (not yet verified), for faults set per account."""
    try:
        return wire.decode_form(body).get("merId")
    except wire.WireError:
        return None


@web.middleware
async def _protocol_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Faults, form parsing, UnionPay refusals and answer signatures for `/gateway/api/`."""
    sim = request.app[SIMULATOR]
    if not request.path.startswith(_PATH):
        return await handler(request)
    claimed = _claimed_mer_id(await request.read())
    fault = await sim.faults.before_protocol_call(account=claimed)
    if fault == "outage":
        return web.Response(status=503, text="Service Unavailable")
    front = request.path.endswith("frontTransReq.do")
    fields: dict[str, str] = {}
    try:
        fields = wire.decode_form(await request.read())
        if fault == "error":
            raise UnionPayError("06")
        request[_FIELDS] = fields
        answer = await handler(request)
    except wire.WireError as exc:
        answer = _refused(sim, front, fields, UnionPayError("10", str(exc)))
    except UnionPayError as exc:
        answer = _refused(sim, front, fields, exc)
    except web.HTTPException:
        raise
    except Exception:
        # A simulator bug still answers like UnionPay would: signed, "通用错误".
        _log.exception("UnionPay simulator failed on %s", request.path)
        answer = _refused(sim, front, fields, UnionPayError("99"))
    if fault == "timeout":
        await sim.faults.hang(claimed)
    return answer


def _refused(
    sim: UnionPaySimulator, front: bool, fields: Mapping[str, str], error: UnionPayError
) -> web.Response:
    if front:
        return pages.error_page(error.code, error.message)
    return _answer(sim, _refusal(fields, error))


def _txn_answer(txn: Txn) -> dict[str, str]:
    """The synchronous answer to the request that made `txn` (the same for a repeat)."""
    code = txn.answer_code
    if txn.kind == "barcode" and code == "00" and txn.state == "failed":
        code = txn.fail_code
    out = {**txn.fields(), "respCode": code, "respMsg": codes.message(code)}
    if code == "00" and txn.kind == "app":
        out["tn"] = txn.code
    elif code == "00" and txn.kind == "qr":
        out["qrCode"] = txn.code
    return out


def _authenticated(request: web.Request) -> dict[str, str]:
    fields: dict[str, str] = request[_FIELDS]
    check_common(fields)
    request.app[SIMULATOR].authenticate(fields)
    return fields


async def _trans(request: web.Request) -> web.Response:
    """`backTransReq.do` and `appTransReq.do`: consumes, refunds and voids."""
    sim = request.app[SIMULATOR]
    fields = _authenticated(request)
    kind = kind_of(request.path.removeprefix(_PATH), fields)
    order_id, txn_time = check_identity(fields)
    existing = sim.book.repeat(fields, order_id, txn_time)
    if existing is not None:
        return _answer(sim, _txn_answer(existing))
    if kind == "refund":
        require(fields, "channelType")
        amount = check_amount(fields)
        check_url(fields, "backUrl", required=True)
        assert amount is not None
        txn = sim.book.refund(fields, amount)
        sim.schedule_refund(txn)
    elif kind == "void":
        check_url(fields, "backUrl", required=False)
        txn = sim.book.void(fields, check_amount(fields, required=False))
    else:
        txn = sim.book.add(kind, fields, check_consume(kind, fields))
        if kind == "barcode" and txn.answer_code in ("00", "03"):
            sim.buyer_pays(txn)
        elif kind == "barcode":
            sim.schedule_password_entry(txn)
        else:
            sim.schedule_auto_pay(txn)
    return _answer(sim, _txn_answer(txn))


async def _query(request: web.Request) -> web.Response:
    """`queryTrans.do`: respCode about the query, origRespCode about the transaction."""
    sim = request.app[SIMULATOR]
    fields = _authenticated(request)
    if (fields["txnType"], fields["txnSubType"]) != ("00", "00"):
        raise UnionPayError("32", f"txnType={fields['txnType']}")
    order_id, txn_time = check_identity(fields)
    txn = sim.book.get(fields["merId"], order_id, txn_time)
    if txn is None:
        raise UnionPayError(codes.NOT_FOUND)
    orig = txn.orig_resp_code
    out = {**txn.fields(), "respCode": "00", "respMsg": codes.message("00")}
    out.update(origRespCode=orig, origRespMsg=codes.message(orig))
    return _answer(sim, out)


async def _front(request: web.Request) -> web.Response:
    """`frontTransReq.do`: the buyer's browser posts the merchant's signed form."""
    sim = request.app[SIMULATOR]
    fields = _authenticated(request)
    kind = kind_of(request.path.removeprefix(_PATH), fields)
    order_id, txn_time = check_identity(fields)
    txn = sim.book.repeat(fields, order_id, txn_time)
    if txn is None:
        txn = sim.book.add(kind, fields, check_consume(kind, fields))
        sim.schedule_auto_pay(txn)
    return pages.cashier(txn)


def _buyer_answer(txn: Txn) -> dict[str, object]:
    return {
        "orderId": txn.order_id,
        "txnTime": txn.txn_time,
        "queryId": txn.query_id,
        "state": txn.state,
        "origRespCode": txn.orig_resp_code,
    }


_BUYER_ROUTES = buyer_routes(
    find=lambda request, code: request.app[SIMULATOR].book.find_by_code(code),
    pay=lambda request, txn: request.app[SIMULATOR].buyer_pays(txn),
    decline=lambda request, txn: request.app[SIMULATOR].book.decline(txn),
    answer=_buyer_answer,
    error=UnionPayError,
    message=lambda exc: exc.message,
)


def _find(request: web.Request) -> Txn | None:
    sim = request.app[SIMULATOR]
    order_id = request.match_info.get("order_id") or request.query.get("orderId", "")
    txn_time = request.query.get("txnTime")
    if txn_time:
        mer_id = request.query.get("merId") or sim.default_account().mer_id
        return sim.book.get(mer_id, order_id, txn_time)
    return sim.book.by_order_id(order_id)


async def _sim_order(request: web.Request) -> web.Response:
    txn = _find(request)
    if txn is None:
        return control_error(404, "no such order", "orderId")
    return web.json_response(txn.as_dict())


async def _front_return(request: web.Request) -> web.Response:
    """Back to the merchant's `frontUrl` with the signed result, as UnionPay's cashier does."""
    sim = request.app[SIMULATOR]
    txn = next((t for t in sim.book if t.query_id == request.query.get("queryId")), None)
    url = txn.request.get("frontUrl") if txn is not None else None
    if txn is None or not url:
        return web.Response(status=404, text="unknown queryId")
    code = txn.orig_resp_code
    fields = sim.sign({**txn.fields(), "respCode": code, "respMsg": codes.message(code)})
    return pages.auto_post(url, fields)


async def _statement(request: web.Request) -> web.Response:
    """The day's settlement file for the sandbox merchant (Beijing date `YYYYMMDD`)."""
    sim = request.app[SIMULATOR]
    raw = request.match_info["day"]
    try:
        day = datetime.strptime(raw, "%Y%m%d").date() if _DAY.fullmatch(raw) else None
    except ValueError:
        day = None
    if day is None:
        return control_error(400, "day: YYYYMMDD", "day")
    mer_id = request.query.get("merId") or sim.default_account().mer_id
    text = bill.statement(sim.book, knobs(sim), mer_id, day)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _file_transfer(request: web.Request) -> web.Response:
    """`fileTransRequest.do` (txnType 76): the day's settlement file, inline."""
    sim = request.app[SIMULATOR]
    return _answer(sim, await statements.file_transfer(request, _authenticated(request)))


def build_app(settings: SimulatorSettings) -> web.Application:
    """The simulator as an aiohttp application; keys are loaded (or made) at start-up."""
    sim = UnionPaySimulator(settings)
    app = web.Application(middlewares=[_protocol_middleware])
    app[SIMULATOR] = sim
    app.cleanup_ctx.append(sim.lifecycle)
    app.on_shutdown.append(sim.on_shutdown)
    app.add_routes(
        [
            web.post(f"{_PATH}frontTransReq.do", _front),
            web.post(f"{_PATH}appTransReq.do", _trans),
            web.post(f"{_PATH}backTransReq.do", _trans),
            web.post(f"{_PATH}queryTrans.do", _query),
            accounts_route(SIMULATOR),
            *_BUYER_ROUTES,
            web.get("/sim/orders/{order_id}", _sim_order),
            web.get("/sim/front-return", _front_return),
            static_route(),
            web.get("/sim/statements/{day}", _statement),
            web.post(statements.PATH, _file_transfer),
            *statements.routes(),
            *fault_routes(_FAULTS),
        ]
    )
    app[_FAULTS] = sim.faults
    return app
