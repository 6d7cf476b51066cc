"""Which wallet's app a page is opened in, from its browser's User-Agent.

Each wallet package declares its app's mark (`channels.spec.InApp.user_agent`): WeChat's
in-app browser says `MicroMessenger/8.0...`, Alipay's `AlipayClient/10.5...`, UnionPay's
`UnionPay/1.0 CloudPay`. Anything else is "another browser": the page shows a QR code.
"""

from __future__ import annotations

from channels.base import Wallet
from channels.registry import REGISTRY


def wallet_of(user_agent: str) -> Wallet | None:
    """The wallet whose app sent this User-Agent; None for any other browser."""
    for spec in REGISTRY.values():
        if spec.in_app is not None and spec.in_app.user_agent.search(user_agent):
            return spec.wallet
    return None
