"""Layers point one way: the domain (payments, routing, webhooks) and the store never import
the web layer. Handlers parse and render, services decide, stores persist; HTTP statuses are
chosen by `router.api.errors` alone, from the domain errors of `router.domain_errors`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = (
    "router/payments",
    "router/routing",
    "router/risk",
    "router/webhooks",
    "router/store",
)
FORBIDDEN = ("aiohttp.web", "router.api", "router.errors", "router.checkout")


def imported(source: str, module: str) -> Iterator[tuple[int, str]]:
    """Every module `source` imports (`from a import b` yields `a.b` too, since `b` may be a
    module), relative imports resolved against `module`, with the line."""
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def violations(source: str, module: str) -> dict[int, str]:
    """The forbidden import of each line that has one, as `line: "module imports name"`."""
    found: dict[int, str] = {}
    for line, name in imported(source, module):
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
            found.setdefault(line, f"{module}:{line} imports {name}")
    return found


def domain_modules() -> Iterator[tuple[str, Path]]:
    for folder in DOMAIN:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def test_the_check_sees_every_way_of_importing() -> None:
    bad = """
from aiohttp import web
import router.api.middleware
from router.errors import InvalidRequest
from ..api import middleware
from router import errors
"""
    found = violations(bad, "router.payments.service")
    assert sorted(found) == [2, 3, 4, 5, 6], found
    assert violations("import aiohttp\nfrom router.domain_errors import NotFound\n", "x.y") == {}


@pytest.mark.parametrize(("module", "path"), list(domain_modules()), ids=lambda v: str(v))
def test_domain_and_store_never_import_the_web_layer(module: str, path: Path) -> None:
    assert list(violations(path.read_text(encoding="utf-8"), module).values()) == []


def test_every_domain_package_is_checked() -> None:
    checked = {module for module, _ in domain_modules()}
    assert {
        "router.payments.service",
        "router.routing.decide",
        "router.risk.control",
        "router.store",
    } <= checked


def test_the_buyer_pages_render_and_decide_nothing() -> None:
    """`router.checkout` (templates, the user-agent check, QR images) is called by the API's
    buyer routes; it never reaches into the API, the domain services or the store."""
    banned = ("router.api", "router.payments", "router.store", "router.routing", "aiohttp")
    found = []
    for path in sorted((ROOT / "router" / "checkout").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for line, name in imported(path.read_text(encoding="utf-8"), module):
            if any(name == b or name.startswith(b + ".") for b in banned):
                found.append(f"{module}:{line} imports {name}")
    assert found == []
