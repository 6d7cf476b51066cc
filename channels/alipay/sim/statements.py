"""The Alipay simulator's statement injection (`/sim/statement/...`, `channels.sim.statements`).

The statement itself is `alipay.data.dataservice.bill.downloadurl.query` (see
`channels.alipay.sim.bill`); the day may be today (the statement so far).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from channels.alipay.protocol.wire import BEIJING, fen_to_yuan
from channels.alipay.sim.orders import AlipayError, Trade
from channels.alipay.sim.state import SIMULATOR, AlipaySimulator
from channels.sim.statements import StatementHooks, statement_routes


def _find(sim: AlipaySimulator, app_id: str, out_trade_no: str) -> Trade | None:
    trade = sim.trades.get(app_id, out_trade_no)
    return trade if trade is not None and trade.gmt_payment is not None else None


def _portal_refund(sim: AlipaySimulator, trade: Trade, amount: int) -> dict[str, object]:
    """A refund the merchant made in Alipay's merchant portal: Alipay numbers the batch."""
    stamp = sim.trades.now().astimezone(BEIJING).strftime("%Y%m%d")
    biz = {
        "refund_amount": fen_to_yuan(amount),
        "out_request_no": f"HZ{stamp}{sim.trades.digits(12)}",
    }
    try:
        refund, _ = sim.trades.refund(trade, biz)
    except AlipayError as exc:
        raise ValueError(exc.sub_msg or exc.msg) from None
    return {"refund_no": refund.out_request_no, "channel_refund_no": None}


def _outside_order(
    sim: AlipaySimulator, app_id: str, amount: int, paid_at: datetime | None
) -> dict[str, object]:
    """A trade paid at the shop's counter (a payment code), made without the router."""
    account = sim.accounts[app_id]
    biz = {
        "out_trade_no": f"pos{sim.trades.digits(20)}",
        "total_amount": fen_to_yuan(amount),
        "subject": "门店收款",
        "scene": "bar_code",
        "auth_code": "286123456789012345",
    }
    trade, _ = sim.trades.open(
        "alipay.trade.pay", app_id, account.seller_id, biz, notify_url=None, return_url=None
    )
    sim.trades.pay(trade)
    if paid_at is not None:
        trade.gmt_payment = paid_at
    return {"order_no": trade.out_trade_no, "channel_trade_no": trade.trade_no}


def _move(trade: Trade, paid_at: datetime) -> None:
    trade.gmt_payment = paid_at


HOOKS = StatementHooks[AlipaySimulator, Trade](
    find=_find,
    amount=lambda trade: trade.total,
    portal_refund=_portal_refund,
    outside_order=_outside_order,
    move_payment=_move,
)


def routes() -> list[web.RouteDef]:
    """The `/sim/statement/...` routes of the Alipay simulator."""
    return statement_routes(SIMULATOR, HOOKS)
