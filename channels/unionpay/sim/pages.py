"""The UnionPay simulator's browser pages: the cashier, error pages and the return to frontUrl
(drawn with the simulators' shared buyer pages, `channels.sim.pages`)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from channels.sim import pages
from channels.unionpay.sim.orders import Txn

BRAND = "银联在线支付"


def _yuan(fen: int | None) -> str:
    if fen is None:
        return "-"
    return f"{fen // 100}.{fen % 100:02d}"


def cashier(txn: Txn) -> web.Response:
    """The page a posted form opens: the simulated UnionPay cashier with Pay and Decline;
    once paid it returns to the merchant's `frontUrl` (through `/sim/front-return`)."""
    back = f"/sim/front-return?queryId={txn.query_id}" if txn.request.get("frontUrl") else None
    return pages.cashier(
        brand=BRAND,
        title="订单支付",
        rows=[("商户号", txn.mer_id), ("订单号", txn.order_id)],
        amount=_yuan(txn.amount),
        code=txn.code,
        state=txn.state,
        state_field="state",
        paid=("succeeded",),
        back=back,
    )


def error_page(code: str, message: str) -> web.Response:
    """What the browser sees when UnionPay refuses a posted form."""
    return pages.error_page(BRAND, code, message)


def auto_post(url: str, fields: Mapping[str, str]) -> web.Response:
    """A page that posts `fields` to `url` at once (UnionPay's front notification)."""
    return pages.auto_post(BRAND, url, fields)
