"""The service reads the time only through an injected `Clock` (`channels.clock`), read from
the source with `ast` (nothing imported), so every deadline, expiry and timestamp follows the
clock a test passes instead of the system's.

Measuring is not reading the time: `time.perf_counter()` for latency histograms and breaker
scores stays allowed, since nothing is decided on it. Each other exception is listed in
`ALLOWED` with its reason; a listed module that no longer reads the time fails, so the list
only shrinks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("router", "channels")

READS = frozenset(
    {
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "datetime.now",
        "datetime.utcnow",
        "datetime.today",
        "date.today",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
    }
)
"""Calls that read the system clock, as written in the source."""
FROM_TIME = frozenset({"time", "time_ns", "monotonic", "monotonic_ns"})
"""`from time import ...` names that would hide such a call behind a bare name."""

ALLOWED: dict[str, str] = {
    "channels.clock": "the clock itself",
    "channels.unionpay.sandbox": "sandbox certificates are issued at set-up, valid around the "
    "real now the simulator checks them against",
}
"""Module -> why it may read the system clock."""
SIMULATORS = ("channels.sim", "channels.wechat.sim", "channels.alipay.sim", "channels.unionpay.sim")
"""The wallets' side: separate servers that keep real time, as the wallets do."""


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def reads(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) for every direct read of the system clock in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (name := _dotted(node.func)) in READS:
            yield node.lineno, f"{name}()"
        elif isinstance(node, ast.ImportFrom) and node.module == "time" and not node.level:
            for alias in node.names:
                if alias.name in FROM_TIME:
                    yield node.lineno, f"from time import {alias.name}"


def found() -> dict[str, list[str]]:
    """Module -> its direct clock reads, for every service module outside the simulators."""
    out: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module(path)
            if any(module == s or module.startswith(s + ".") for s in SIMULATORS):
                continue
            hits = [f"{line}: {what}" for line, what in reads(ast.parse(path.read_text()))]
            if hits:
                out[module] = hits
    return out


def test_the_scan_sees_clock_reads() -> None:
    source = "import time\nfrom datetime import datetime\nfrom time import monotonic\n"
    source += "a = time.time()\nb = datetime.now()\nc = time.perf_counter()\n"
    assert [what for _, what in reads(ast.parse(source))] == [
        "from time import monotonic",
        "time.time()",
        "datetime.now()",
    ]
    assert "channels.clock" in found()


def test_no_module_reads_the_system_clock_directly() -> None:
    reads_now = found()
    unlisted = {m: hits for m, hits in reads_now.items() if m not in ALLOWED}
    assert not unlisted, f"read the time through the injected Clock instead: {unlisted}"
    gone = sorted(set(ALLOWED) - set(reads_now))
    assert not gone, f"no longer read the system clock, so remove from ALLOWED: {gone}"
