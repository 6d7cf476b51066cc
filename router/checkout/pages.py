"""Rendering the buyer's pages: Jinja2 templates with autoescape, in Chinese or English.

Every value reaches a template as data and is escaped for where it lands: HTML text and
attributes by autoescape, JSON for the script by `tojson` inside an attribute (the script
reads `data-*` attributes, never inline code), URLs by `urlencode` where they are built.
There is no inline script or style, so the Content-Security-Policy (`csp`) allows scripts
and styles from the router itself only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("router.checkout", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "收银台",
        "pay_to": "付款给",
        "amount": "金额",
        "order": "订单",
        "scan": "请使用微信、支付宝或云闪付扫码支付",
        "time_left": "剩余时间",
        "status": "状态",
        "pending": "等待付款",
        "processing": "处理中",
        "succeeded": "支付成功",
        "failed": "支付失败",
        "closed": "已关闭",
        "expired": "已过期",
        "pay": "立即支付",
        "pay_with": "使用{wallet}支付",
        "returning": "正在返回商户…",
        "back": "返回商户",
        "qr_alt": "本页面的二维码",
        "other_wallet": "此订单正在使用其他钱包支付",
        "unavailable": "支付暂时无法发起，请稍后重试",
        "not_found": "找不到该订单",
        "link_amount": "输入金额（元）",
        "link_submit": "下一步",
        "link_disabled": "该收款码已停用",
        "amount_invalid": "请输入有效金额",
        "declined": "该笔支付已被拒绝",
        "too_many": "请求过于频繁，请稍后再试",
        "language": "English",
    },
    "en": {
        "title": "Checkout",
        "pay_to": "Pay to",
        "amount": "Amount",
        "order": "Order",
        "scan": "Scan with WeChat, Alipay or UnionPay to pay",
        "time_left": "Time left",
        "status": "Status",
        "pending": "Waiting for payment",
        "processing": "Processing",
        "succeeded": "Paid",
        "failed": "Payment failed",
        "closed": "Closed",
        "expired": "Expired",
        "pay": "Pay now",
        "pay_with": "Pay with {wallet}",
        "returning": "Returning to the shop…",
        "back": "Back to the shop",
        "qr_alt": "QR code of this page",
        "other_wallet": "This payment is being paid with another wallet",
        "unavailable": "The payment cannot be started right now; please try again shortly",
        "not_found": "No such payment",
        "link_amount": "Amount (CNY)",
        "link_submit": "Continue",
        "link_disabled": "This payment code is no longer in use",
        "amount_invalid": "Enter a valid amount",
        "declined": "This payment was declined",
        "too_many": "Too many attempts; please wait a moment and try again",
        "language": "中文",
    },
}
LANGUAGES = tuple(STRINGS)


def language(accept_language: str, asked: str | None) -> str:
    """`?lang=` if it names one we have, else the first of Accept-Language we have, else zh."""
    if asked in STRINGS:
        return asked
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag[:2] in STRINGS:
            return tag[:2]
    return "zh"


def money(amount: int, currency: str) -> str:
    """An amount in minor units as buyers read it (`¥19.99`)."""
    sign = "¥" if currency == "CNY" else f"{currency} "
    return f"{sign}{amount // 100}.{amount % 100:02d}"


def csp(form_origins: tuple[str, ...] = ()) -> str:
    """The pages' Content-Security-Policy; forms may also post to `form_origins` (a wallet's
    cashier)."""
    forms = " ".join(("'self'", *form_origins))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src 'self'; form-action {forms}; base-uri 'none'; frame-ancestors 'none'"
    )


def render(template: str, lang: str, **values: Any) -> str:
    """A page in `lang`; `values` are the template's data (escaped by the template)."""
    strings: Mapping[str, str] = STRINGS[lang]
    other = "en" if lang == "zh" else "zh"
    return _ENV.get_template(template).render(t=strings, lang=lang, other_lang=other, **values)
