"""Choosing the channel account for a payment.

For now: the merchant's pinned `channel`, or the first account in the routing file (in file
order) that can take the payment's wallet, method, currency and mode. Rules, strategies and
health scores plug in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from channels.base import Channel, Method, Wallet
from router.errors import InvalidRequest


@dataclass(frozen=True)
class Candidate:
    channel: Channel
    livemode: bool


@dataclass(frozen=True)
class Decision:
    rule: str
    candidates: list[Channel]


def choose(
    accounts: Mapping[str, Candidate],
    *,
    method: Method,
    currency: str,
    wallet: Wallet | None,
    pinned: str | None,
    livemode: bool,
) -> Decision:
    """The candidates to try, in order. Raises `InvalidRequest` naming the field at fault."""
    if pinned is not None:
        found = accounts.get(pinned)
        if found is None:
            raise InvalidRequest(
                "unknown_channel", f"No channel account {pinned!r}", param="channel"
            )
        caps = found.channel.capabilities
        if found.livemode != livemode:
            mode = "live" if found.livemode else "sandbox"
            raise InvalidRequest(
                "channel_mode_mismatch",
                f"Channel account {pinned!r} is a {mode} account; "
                f"{'live' if livemode else 'test'} keys cannot use it",
                param="channel",
            )
        if wallet is not None and caps.wallet != wallet:
            raise InvalidRequest(
                "wallet_mismatch",
                f"Channel account {pinned!r} is a {caps.wallet} account, not {wallet}",
                param="wallet",
            )
        if method not in caps.methods:
            raise InvalidRequest(
                "method_unsupported",
                f"Channel account {pinned!r} does not support method {method!r}",
                param="method",
            )
        if currency not in caps.currencies:
            raise InvalidRequest(
                "currency_unsupported",
                f"Channel account {pinned!r} does not accept {currency}",
                param="currency",
            )
        return Decision(rule="pinned", candidates=[found.channel])

    mode = "live" if livemode else "sandbox"
    usable = [
        c.channel
        for c in accounts.values()
        if c.livemode == livemode and (wallet is None or c.channel.capabilities.wallet == wallet)
    ]
    if not usable:
        raise InvalidRequest(
            "no_channel_available",
            f"No {mode} channel account for wallet {wallet!r}"
            if wallet
            else f"No {mode} channel account",
            param="wallet" if wallet else None,
        )
    usable = [c for c in usable if method in c.capabilities.methods]
    if not usable:
        raise InvalidRequest(
            "method_unsupported",
            f"No {mode} channel account takes method {method!r}"
            + (f" for wallet {wallet!r}" if wallet else ""),
            param="method",
        )
    usable = [c for c in usable if currency in c.capabilities.currencies]
    if not usable:
        raise InvalidRequest(
            "currency_unsupported",
            f"No {mode} channel account takes {currency} for method {method!r}",
            param="currency",
        )
    return Decision(rule="default", candidates=usable)
