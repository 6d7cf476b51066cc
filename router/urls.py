"""Which URLs payrouter will send merchants' webhooks to.

Every URL a merchant or an operator gives for webhooks (a payment's `notify_url`, a merchant's
default endpoint) passes `url_problem` wherever it enters (API models, CLI). In live mode it
must also pass `live_url_problem` (https, and a host whose every address is global unicast);
the dispatcher checks the addresses again when it connects
(`router.webhooks.delivery.SafeResolver`), so a DNS answer that changes later cannot point a
delivery at an internal address.

"Global" is `ipaddress`'s `is_global` (IANA's special-purpose registries), not a hand-kept
list of private ranges: shared address space (100.64.0.0/10), benchmarking, documentation,
and unique-local IPv6 are all refused with it; an IPv4-mapped IPv6 address is judged as IPv4.
"""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import SplitResult, urlsplit

MAX_URL = 2048


def _split(url: str) -> SplitResult | str:
    """The parts of `url`, or why it cannot be parsed."""
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if not url.isascii() or any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in url):
        return "must be ASCII without spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    return parts


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook endpoint in any mode (None: it can)."""
    parts = _split(url)
    if isinstance(parts, str):
        return parts
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    return None


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address when `host` is an IP literal (brackets and zone removed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def public_address(address: str) -> bool:
    """True only for a global unicast address a merchant's server may have."""
    ip = ip_literal(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def live_url_problem(url: str) -> str | None:
    """Why `url` cannot be a live-mode endpoint, without asking DNS (None: not yet refused)."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "live-mode webhook URLs must use https"
    host = parts.hostname or ""
    if ip_literal(host) is not None and not public_address(host):
        return f"{host} is not a public address"
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"{host} is not a public host name"
    return None


async def check_live_url(url: str) -> str | None:
    """Why a live-mode endpoint is refused (None: acceptable): the static checks, then every
    address its host resolves to must be public."""
    problem = live_url_problem(url)
    if problem is not None:
        return problem
    host = urlsplit(url).hostname or ""
    if ip_literal(host) is not None:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 443)
    except (OSError, UnicodeError):
        return f"{host} does not resolve"
    if not infos or not all(public_address(str(info[4][0])) for info in infos):
        return f"{host} resolves to a non-public address"
    return None
