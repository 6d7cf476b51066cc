"""The import rules of docs/architecture.md, read from the source with `ast` (nothing imported).

A rule that does not hold yet lists each of its current breaches in `KNOWN`, with the reason:
a new breach fails, and so does a known one that is gone (delete its line), so the list only
shrinks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCES = {"router": ROOT, "channels": ROOT, "benchmarks": ROOT, "payrouter_sdk": ROOT / "sdk"}
"""Top-level package -> the folder it lives in."""

DOMAIN = (
    "router.payments",
    "router.routing",
    "router.risk",
    "router.webhooks",
    "router.store",
)


@dataclass(frozen=True)
class Rule:
    """Modules under `importers` (minus `allowed`) never import anything under `forbidden`."""

    name: str
    importers: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()

    def breached_by(self, importer: str, target: str) -> bool:
        return (
            _under(importer, self.importers)
            and not _under(importer, self.allowed)
            and _under(target, self.forbidden)
        )


RULES = [
    Rule("channels never import router", ("channels",), ("router",)),
    Rule(
        "only router.store imports redis",
        ("router", "channels", "payrouter_sdk"),
        ("redis",),
        allowed=("router.store",),
    ),
    Rule(
        "only router.record talks SQL (sqlalchemy, asyncpg, aiosqlite, alembic)",
        ("router", "channels", "payrouter_sdk"),
        ("sqlalchemy", "asyncpg", "aiosqlite", "alembic"),
        allowed=("router.record",),
    ),
    Rule("domain packages never import the web layer", DOMAIN, ("aiohttp.web", "router.api")),
    Rule("the SDK imports neither router nor channels", ("payrouter_sdk",), ("router", "channels")),
    Rule(
        "the service never imports the benchmarks (but the CLI registers `bench`)",
        ("router", "channels"),
        ("benchmarks",),
        allowed=("router.cli.main",),
    ),
    Rule(
        "verbs are added in router.cli.main only: no module imports the top-level group",
        ("router", "channels", "benchmarks"),
        ("router.cli.main", "router.__main__"),
        allowed=("router.__main__",),
    ),
]

KNOWN: dict[tuple[str, str, str], str] = {}
"""(rule, importer, imported module) -> why it is still there."""


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _module(path: Path, folder: Path) -> str:
    parts = list(path.relative_to(folder).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """What an import statement may load: `from a import b` may be module `a` or `a.b`."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def imports() -> Iterator[tuple[str, str]]:
    """(importer, target) for every import statement, at any depth, in every source file."""
    for top, folder in SOURCES.items():
        for path in sorted((folder / top).rglob("*.py")):
            module = _module(path, folder)
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    for target in _targets(node, module, path.name == "__init__.py"):
                        yield module, target


def breaches() -> set[tuple[str, str, str]]:
    """(rule, importer, target): the first target of a statement that breaks a rule."""
    found: set[tuple[str, str, str]] = set()
    edges = set(imports())
    for rule in RULES:
        hits = sorted((i, t) for i, t in edges if rule.breached_by(i, t))
        for importer, target in hits:
            # `from redis.asyncio import Redis` also yields redis.asyncio.Redis: keep the module.
            if not any(k[:2] == (rule.name, importer) and _under(target, k[2:]) for k in found):
                found.add((rule.name, importer, target))
    return found


def test_the_scan_sees_imports() -> None:
    edges = set(imports())
    assert ("router.cli.main", "benchmarks.harness.cli") in edges
    assert ("payrouter_sdk", "payrouter_sdk._client") in edges
    assert ("channels.wechat.adapter", "channels.http") in edges


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule(rule: Rule) -> None:
    found = {b for b in breaches() if b[0] == rule.name}
    known = {k for k in KNOWN if k[0] == rule.name}
    new = sorted(found - known)
    gone = sorted(known - found)
    assert not new, f"new imports break {rule.name!r}: {new}"
    assert not gone, f"no longer there, so remove from KNOWN: {gone}"
