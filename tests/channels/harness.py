"""What the shared channel contract suite needs from each channel: a `Harness`.

Each channel family provides a module `tests/channels/harnesses/<wallet>.py` with one async
context manager function `harness(tmp_path, session)` that starts that channel's simulator on
a loopback port, builds the adapter as the router would from its routing-config entry, and
yields a `Harness`. `tests/channels/test_contract.py` runs the same tests over every module
listed in its `HARNESSES`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from channels.base import Action, Channel


@dataclass
class Harness:
    """A running simulator and the adapter pointed at it."""

    name: str
    """The wallet: `wechat`, `alipay` or `unionpay`."""
    channel: Channel
    sim_url: str
    pay: Callable[[Action], Awaitable[None]]
    """The buyer pays with whatever the action gave them (QR string, URL, prepay id, tn)."""
    decline: Callable[[Action], Awaitable[None]]
    """The buyer's payment fails."""
    set_faults: Callable[[dict[str, Any]], Awaitable[None]]
    """`PUT /sim/faults` with these fields (the others back to their defaults)."""
    auth_code: str
    """A barcode the simulator accepts as the buyer's payment code for this wallet."""
    payer_id: str | None = None
    """A jsapi payer id (openid, buyer_id) the simulator accepts; None: no jsapi."""


HarnessFactory = Callable[[Path, aiohttp.ClientSession], AbstractAsyncContextManager[Harness]]
