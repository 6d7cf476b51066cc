"""The UnionPay simulator's browser pages: the cashier, error pages and the return to frontUrl."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

from channels.unionpay.sim.orders import Txn

_STYLE = "body{font-family:sans-serif;max-width:32em;margin:2em auto}button{margin-right:1em}"


def _yuan(fen: int | None) -> str:
    if fen is None:
        return "-"
    return f"{fen // 100}.{fen % 100:02d}"


def cashier(txn: Txn) -> str:
    """The page a posted form opens: the simulated UnionPay cashier with Pay and Decline."""
    code = html.escape(json.dumps(txn.code))
    back = ""
    if txn.request.get("frontUrl"):
        target = html.escape(f"/sim/front-return?queryId={txn.query_id}")
        back = f'<p><a id="back" href="{target}" hidden>Return to the merchant</a></p>'
    return f"""<!doctype html><meta charset="utf-8"><title>UnionPay (simulator)</title>
<style>{_STYLE}</style>
<h1>银联在线支付 · UnionPay online payment</h1>
<p>Merchant {html.escape(txn.mer_id)} · order {html.escape(txn.order_id)}</p>
<p>¥{_yuan(txn.amount)} · <b id="state">{html.escape(txn.state)}</b></p>
<button onclick="act('pay')">Pay</button><button onclick="act('decline')">Decline</button>
{back}
<script>async function act(what) {{
  const r = await fetch('/sim/buyer/' + what, {{method: 'POST',
    headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{code: {code}}})}});
  const j = await r.json();
  document.getElementById('state').textContent = j.state || (j.error && j.error.message);
  const back = document.getElementById('back'); if (back && j.state) back.hidden = false;
}}</script>"""


def error_page(code: str, message: str) -> str:
    """What the browser sees when UnionPay refuses a posted form."""
    return f"""<!doctype html><meta charset="utf-8"><title>UnionPay (simulator)</title>
<style>{_STYLE}</style><h1>交易失败 · Transaction refused</h1>
<p>respCode <b id="respCode">{html.escape(code)}</b>:
<span id="respMsg">{html.escape(message)}</span></p>"""


def auto_post(url: str, fields: Mapping[str, str]) -> str:
    """A page that posts `fields` to `url` at once (UnionPay's front notification)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return f"""<!doctype html><meta charset="utf-8"><title>UnionPay (simulator)</title>
<form id="f" method="post" action="{html.escape(url)}">{inputs}
<button>Return to the merchant</button></form>
<script>document.getElementById('f').submit()</script>"""
