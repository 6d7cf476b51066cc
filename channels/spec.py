"""What a channel package declares about itself, once, for the registry (`channels.registry`).

Each wallet package's `__init__` builds one `ChannelSpec`; the router, the routing-file schema
and the simulator runner read the registry instead of naming channel packages.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import aiohttp

from channels.base import Channel, Method, Wallet
from channels.clock import Clock
from channels.credentials import AccountBase, CredentialsRef

if TYPE_CHECKING:
    from aiohttp import web

    from channels.sim.kit import SimulatorSettings

A = TypeVar("A", bound=AccountBase)


@dataclass(frozen=True)
class BuyerCode:
    """How a buyer's code of this wallet looks, so the router sends it only here."""

    pattern: re.Pattern[str]
    """For a payment code (`auth_code`), matched as a prefix; for a `payer_id`, whole."""
    described: str
    """The shape in words, for error messages ("10-15", "an Alipay buyer id (...)")."""


@dataclass(frozen=True)
class InApp:
    """How the router's hosted checkout pays inside this wallet's own app."""

    user_agent: re.Pattern[str]
    """Searched in the browser's User-Agent: the wallet app's in-app browser says its name."""
    method: Method
    """The method the order is created with there (`jsapi` in WeChat, `h5` otherwise)."""
    identifies_payer: bool = False
    """The method needs the buyer's id, learnt through the wallet's authorisation first
    (`channels.base.IdentifiesPayer`)."""
    label_zh: str = ""
    """The wallet as Chinese buyers name it in "使用…支付" ("微信"); empty: `name`."""
    sandbox_sheet: str | None = None
    """For app parameters (a pay sheet the wallet app shows): the simulator's path that
    stands in for the app in a plain browser, given `package` and `redirect_url`."""


@dataclass(frozen=True)
class ChannelSpec(Generic[A]):
    """One channel: its routing-file account, its adapter, its simulator, its sandbox."""

    wallet: Wallet
    """The routing file's account `type` and the payment's `wallet`."""
    account: type[A]
    """The account's schema in the routing file (a `type: Literal[wallet]` discriminator)."""
    build: Callable[[str, A, Path, aiohttp.ClientSession, Clock], Channel]
    """The adapter for one account; credentials resolved against the routing file's folder.
    The clock is the router's, so adapters' timestamps move with it in tests."""
    load_credentials: Callable[[CredentialsRef, Path], object]
    """Reads and validates an account's credential bundle (raises `CredentialsError`)."""
    sandbox_credentials: Callable[[Path], Path]
    """Where the simulator's sandbox merchant bundle lives inside a sandbox folder."""
    simulator: str
    """`module:function` building the simulator's application from `SimulatorSettings`;
    imported only when a simulator is started, so the router never loads simulator code."""
    simulator_port: int
    """The simulator's default port, also named by the shipped config/routing.yaml."""
    name: str
    """The wallet as buyers and merchants call it, for messages ("WeChat Pay")."""
    auth_code: BuyerCode | None = None
    """The prefix of the wallet's payment codes (`barcode` payments), from its documentation."""
    payer_id: BuyerCode | None = None
    """The buyer id a `jsapi` payment names (None: the wallet has no `jsapi`)."""
    in_app: InApp | None = None
    """How the hosted checkout pays in the wallet's app (None: it cannot)."""

    def build_simulator(self, settings: SimulatorSettings) -> web.Application:
        """The simulator as an aiohttp application."""
        module, _, function = self.simulator.partition(":")
        factory: Callable[[SimulatorSettings], web.Application] = getattr(
            importlib.import_module(module), function
        )
        return factory(settings)
