"""What can go wrong when the router talks to a channel.

    ChannelError
    ├── ChannelUnavailable      the channel certainly did not act on the request: the
    │                           connection was refused or never established, or the channel
    │                           answered that it did not process it (rate limit, 503).
    │                           Safe to try another channel.
    ├── ChannelRejected         the channel answered and said no (a business failure with the
    │                           channel's own code). Nothing was created at the channel.
    └── ChannelOutcomeUnknown   the request may or may not have been acted on: a timeout after
                                the request was sent, a dropped connection, a 5xx, an answer
                                that does not verify. Never retry elsewhere blindly: query or
                                close at this channel first.

    NotificationRejected        a callback that failed verification (signature, decryption,
                                unknown account, malformed). Not a ChannelError: it comes
                                from whoever posted it, not from a call we made.

Failover and circuit breakers depend on keeping these apart; the HTTP sender in
`channels.http` translates aiohttp and asyncio errors into this tree at the boundary.
"""

from __future__ import annotations

from typing import Literal

Fault = Literal["channel", "request", "buyer"]
"""Who caused a rejection: the channel (counts against its health), our request, or the buyer."""


class ChannelError(Exception):
    """Base of every error raised by a channel adapter."""

    def __init__(self, message: str, *, code: str = "", fault: Fault = "channel") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fault: Fault = fault


class ChannelUnavailable(ChannelError):
    """The channel certainly did not act on the request."""


class ChannelRejected(ChannelError):
    """The channel answered and refused; `code` is the channel's own error code."""


class ChannelOutcomeUnknown(ChannelError):
    """The request may have been acted on; the truth must be found by query."""


class NotificationRejected(Exception):
    """A channel callback that must change nothing: bad signature, bad ciphertext, malformed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
