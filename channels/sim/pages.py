"""The simulators' buyer pages: a wallet's cashier or in-app confirm screen, in Chinese as
the real ones are, that a browser can click through.

A page is plain HTML; its one script (`static/buyer.js`, served at `/sim/static/`) reads what
it needs from `data-*` attributes, so nothing is interpolated into JavaScript and the pages
carry a Content-Security-Policy that allows no inline script. Pay and Decline post
`{"code"}` to the simulator's own `/sim/buyer/pay|decline`, as a curl user would; once paid,
the page goes back to the merchant (`back`), as the wallet does.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action *; base-uri 'none'"
)


def static_route() -> web.StaticDef:
    """`/sim/static/`: the pages' script and style sheet."""
    return web.static("/sim/static", STATIC)


def _page(title: str, body: str, attributes: Mapping[str, str] | None = None) -> str:
    attrs = "".join(
        f' data-{name}="{html.escape(value)}"' for name, value in (attributes or {}).items()
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="/sim/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/sim/static/buyer.css">
<script src="/sim/static/buyer.js" defer></script></head>
<body{attrs}><main>
{body}
</main></body></html>"""


def respond(text: str, status: int = 200) -> web.Response:
    """An HTML answer with the pages' CSP."""
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response


def cashier(
    *,
    brand: str,
    title: str,
    rows: Iterable[tuple[str, str]],
    amount: str,
    code: str,
    state: str,
    state_field: str,
    paid: Iterable[str],
    back: str | None = None,
) -> web.Response:
    """A cashier: the brand, the amount, labelled rows, the state, Pay and Decline.

    `code` is what `/sim/buyer/pay` takes; `state_field` names the member of its answer that
    holds the order's state, and `paid` the states that mean paid (then go to `back`).
    """
    items = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>" for label, value in rows
    )
    body = f"""<header class="brand">{html.escape(brand)}</header>
<h1>{html.escape(title)}</h1>
<p class="amount" id="amount">¥{html.escape(amount)}</p>
<dl>{items}<dt>状态</dt>
<dd><b id="state" role="status" aria-live="polite">{html.escape(state)}</b></dd></dl>
<p id="error" role="alert" hidden></p>
<button type="button" id="pay" class="pay" data-act="pay">确认付款</button>
<button type="button" id="decline" class="decline" data-act="decline">取消支付</button>"""
    attributes = {
        "code": code,
        "state-field": state_field,
        "paid": ",".join(paid),
        "back": back or "",
    }
    return respond(_page(f"{brand} (simulator)", body, attributes))


def error_page(brand: str, code: str, message: str, status: int = 400) -> web.Response:
    """What the browser sees when the channel refuses what it was sent."""
    body = f"""<header class="brand">{html.escape(brand)}</header>
<h1>交易失败</h1><p>错误代码 <b id="respCode">{html.escape(code)}</b>：
<span id="respMsg">{html.escape(message)}</span></p>"""
    return respond(_page(f"{brand} (simulator)", body), status)


def auto_post(brand: str, url: str, fields: Mapping[str, str]) -> web.Response:
    """A page that posts `fields` to `url` at once (a front notification back to the shop)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    body = f"""<form id="f" method="post" action="{html.escape(url)}" data-autosubmit="true">
{inputs}<button type="submit" class="pay">返回商户</button></form>"""
    return respond(_page(f"{brand} (simulator)", body))
