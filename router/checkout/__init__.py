"""The buyer's side: the hosted checkout page, payment-link pages, QR images (docs/checkout.md).

HTTP-facing like `router.api` (whose `checkout.py` and `links.py` route to it), but for buyers
and their wallets' in-app browsers rather than merchants: server-rendered pages (Jinja2,
autoescaped, `templates/`), one static script and style sheet (`static/`, so a strict
Content-Security-Policy allows no inline script), the wallet told apart by the user agent
(`agent`), and QR images drawn with segno (`qr`). Decisions stay in `router.payments`.
"""
