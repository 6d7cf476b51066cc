"""The constructor and plumbing every channel adapter shares.

Each adapter keeps its account name, config, credentials, the application's HTTP session, a
clock (the router's `channels.clock.Clock`), the account's timeouts and its capabilities, and
sends through `channels.http.send`. `ChannelAdapter` holds those; signing, answer checks and every
protocol call stay in the channel's own adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Generic, Self, TypeVar, cast

import aiohttp

from channels.base import Capabilities, Wallet
from channels.clock import Clock
from channels.credentials import AccountBase, CredentialsBase
from channels.http import HttpAnswer, HttpRequest, send

ConfigT = TypeVar("ConfigT", bound=AccountBase)
CredentialsT = TypeVar("CredentialsT", bound=CredentialsBase)


class ChannelAdapter(Generic[ConfigT, CredentialsT]):
    """One configured channel account: the parts of the `Channel` contract all share."""

    wallet: ClassVar[Wallet]
    """The wallet this adapter's capabilities name."""
    credentials_type: ClassVar[type[CredentialsBase]]
    """The account's credential bundle (the `CredentialsT` of the subclass), read by `build`."""

    @classmethod
    def build(
        cls,
        name: str,
        config: ConfigT,
        base_dir: Path,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
    ) -> Self:
        """The channel for one routing-config entry; credentials resolved against `base_dir`,
        times read from `clock` (the router passes its own; the system's when none)."""
        credentials = cls.credentials_type.load(config.credentials, base_dir)
        return cls(name, config, cast(CredentialsT, credentials), session, clock)

    def __init__(
        self,
        name: str,
        config: ConfigT,
        credentials: CredentialsT,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
    ) -> None:
        self._name = name
        self._config = config
        self._credentials = credentials
        self._session = session
        # Signing timestamps and signature windows read this clock, the router's own.
        self._clock = clock or Clock()
        self._timeouts = config.timeouts.to_timeouts()
        # Every channel here takes CNY only and refunds in parts.
        self._capabilities = Capabilities(
            wallet=self.wallet,
            methods=config.methods or config.supported_methods,
            currencies=frozenset({"CNY"}),
            partial_refunds=True,
        )

    @property
    def account(self) -> str:
        """The account's name in the routing config (for example `wechat_main`)."""
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        """What this account can do, checked by the router before any call."""
        return self._capabilities

    async def _exchange(self, request: HttpRequest) -> HttpAnswer:
        """Send with this account's session and timeouts; transport errors translated."""
        return await send(self._session, request, self._timeouts)
