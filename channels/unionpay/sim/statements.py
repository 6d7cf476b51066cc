"""The UnionPay simulator's file transfer (`txnType` 76) and statement injection.

    POST /gateway/api/fileTransRequest.do   txnType=76, txnSubType=01, bizType=000000,
                                            fileType=00, settleDate=MMDD, merId, txnTime
        → respCode 00 with fileName and fileContent: the day's zip, deflated (zlib) and
          base64'd, as UnionPay sends it; respCode 98 when the day has no file.

The most recent day with that `MMDD`, today included (the file so far: a sandbox convenience).
`/sim/statement/...` (`channels.sim.statements`) injects coupons, portal refunds, outside
orders and times.
"""

from __future__ import annotations

import base64
import re
import zlib
from datetime import date, datetime

from aiohttp import web

from channels.sim.statements import StatementHooks, knobs, statement_routes
from channels.unionpay.protocol import codes, wire
from channels.unionpay.protocol.codes import NO_FILE
from channels.unionpay.sim import bill
from channels.unionpay.sim.orders import Txn, UnionPayError, require
from channels.unionpay.sim.state import SIMULATOR, UnionPaySimulator

PATH = "/gateway/api/fileTransRequest.do"
_SETTLE_DATE = re.compile(r"(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])")


def settle_day(mmdd: str, today: date) -> date:
    """The most recent day, up to `today`, whose month and day are `mmdd`. Raises
    `UnionPayError` (respCode 10) for a day no calendar has."""
    if not _SETTLE_DATE.fullmatch(mmdd):
        raise UnionPayError("10", "settleDate")
    month, day = int(mmdd[:2]), int(mmdd[2:])
    for year in (today.year, today.year - 1, today.year - 4):
        try:
            found = date(year, month, day)
        except ValueError:
            continue
        if found <= today:
            return found
    raise UnionPayError("10", "settleDate")


async def file_transfer(request: web.Request, fields: dict[str, str]) -> dict[str, str]:
    """The answer's fields (unsigned) to an authenticated file-transfer request."""
    sim = request.app[SIMULATOR]
    require(fields, "settleDate", "fileType")
    if fields["txnType"] != "76":
        raise UnionPayError("10", "txnType")
    if fields["fileType"] != "00":
        raise UnionPayError("10", "fileType")
    day = settle_day(fields["settleDate"], sim.book.now().astimezone(wire.BEIJING).date())
    out: dict[str, str] = {
        name: fields[name]
        for name in ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType")
        if name in fields
    }
    out.update(
        accessType=fields.get("accessType", "0"),
        merId=fields["merId"],
        txnTime=fields["txnTime"],
        settleDate=fields["settleDate"],
        fileType="00",
    )
    found = bill.rows(sim.book, knobs(sim), fields["merId"], day)
    if not found:
        return {**out, "respCode": NO_FILE, "respMsg": "文件不存在"}
    text = "\r\n".join(bill.render(found)) + "\r\n"
    content = zlib.compress(bill.archive(text, fields["merId"], day))
    out.update(
        respCode="00",
        respMsg=codes.message("00"),
        fileName=f"{fields['merId']}_{day:%Y%m%d}.zip",
        fileContent=base64.b64encode(content).decode("ascii"),
    )
    return out


def _find(sim: UnionPaySimulator, mer_id: str, order_id: str) -> Txn | None:
    txn = sim.book.by_order_id(order_id)
    if txn is None or txn.mer_id != mer_id or txn.txn_type != "01" or txn.paid_at is None:
        return None
    return txn


def _portal_refund(sim: UnionPaySimulator, txn: Txn, amount: int) -> dict[str, object]:
    """A refund the merchant made in UnionPay's merchant portal: done at once."""
    now = sim.book.now()
    fields = {
        "merId": txn.mer_id,
        "orderId": "mp" + wire.format_txn_time(now) + "".join(sim.rng.choices("0123456789", k=8)),
        "txnTime": wire.format_txn_time(now),
        "txnType": "04",
        "txnSubType": "00",
        "origQryId": txn.query_id,
    }
    try:
        refund = sim.book.refund(fields, amount)
    except UnionPayError as exc:
        raise ValueError(f"{exc.code} {exc.message}") from None
    sim.book.finish_refund(refund)
    return {"refund_no": refund.order_id, "channel_refund_no": refund.query_id}


def _outside_order(
    sim: UnionPaySimulator, mer_id: str, amount: int, paid_at: datetime | None
) -> dict[str, object]:
    """A consume at the shop's terminal, made without the router."""
    now = sim.book.now()
    fields = {
        "merId": mer_id,
        "orderId": "pos" + "".join(sim.rng.choices("0123456789", k=20)),
        "txnTime": wire.format_txn_time(now),
        "txnType": "01",
        "txnSubType": "01",
    }
    txn = sim.book.add("front", fields, amount)
    sim.book.pay(txn)
    if paid_at is not None:
        _move(txn, paid_at)
    return {"order_no": txn.order_id, "channel_trade_no": txn.query_id}


def _move(txn: Txn, paid_at: datetime) -> None:
    txn.paid_at = paid_at
    txn.trace_time = paid_at.astimezone(wire.BEIJING).strftime("%m%d%H%M%S")


HOOKS = StatementHooks[UnionPaySimulator, Txn](
    find=_find,
    amount=lambda txn: txn.amount or 0,
    portal_refund=_portal_refund,
    outside_order=_outside_order,
    move_payment=_move,
)


def routes() -> list[web.RouteDef]:
    """The `/sim/statement/...` routes of the UnionPay simulator."""
    return statement_routes(SIMULATOR, HOOKS)
