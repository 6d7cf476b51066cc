"""Every channel the router knows, keyed by the routing file's account `type`.

The one place outside the channel packages that names them: a new channel is its package
(declaring `CHANNEL`) plus one line here.
"""

from __future__ import annotations

from typing import Any

from channels import alipay, unionpay, wechat
from channels.spec import ChannelSpec

REGISTRY: dict[str, ChannelSpec[Any]] = {
    "wechat": wechat.CHANNEL,
    "alipay": alipay.CHANNEL,
    "unionpay": unionpay.CHANNEL,
}
"""In the order the simulators are started and listed."""
