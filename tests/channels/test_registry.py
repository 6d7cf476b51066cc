"""The channel registry is the one place outside a wallet's package that names it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from channels.base import WALLETS
from channels.registry import REGISTRY
from channels.sim.kit import SimulatorSettings

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"sim"}
"""Packages under channels/ that are shared parts, not wallets."""
WALLET_PACKAGES = sorted(
    p.parent.name for p in (ROOT / "channels").glob("*/__init__.py") if p.parent.name not in SHARED
)
REGISTRY_FILE = ROOT / "channels" / "registry.py"


def _named_wallets(path: Path) -> set[str]:
    """The wallet packages a module imports (`channels.wechat...` or `from channels import x`)."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for module in modules:
            parts = module.split(".")
            if len(parts) > 1 and parts[0] == "channels" and parts[1] in WALLET_PACKAGES:
                named.add(parts[1])
    return named


def test_every_wallet_package_is_registered_under_its_wallet() -> None:
    assert sorted(REGISTRY) == WALLET_PACKAGES
    assert set(REGISTRY) == set(WALLETS)
    for key, spec in REGISTRY.items():
        assert spec.wallet == key
        assert spec.account.model_fields["type"].annotation.__args__ == (key,)


def test_every_registered_simulator_builds(tmp_path: Path) -> None:
    for spec in REGISTRY.values():
        app = spec.build_simulator(SimulatorSettings(sandbox_dir=tmp_path))
        assert isinstance(app, web.Application)


def test_the_router_loads_no_simulator_code() -> None:
    """Simulators are named by the registry as strings, imported only when one is started."""
    probe = (
        "import sys, router.app, router.runtime\n"
        "print(sorted(m for m in sys.modules if m.startswith('channels.') and '.sim' in m))"
    )
    loaded = subprocess.run(  # noqa: S603 - our own interpreter, a fixed probe
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "[]"


def test_only_the_registry_names_the_wallet_packages() -> None:
    service = [*(ROOT / "router").rglob("*.py"), *(ROOT / "channels").glob("*.py")]
    service += (ROOT / "channels" / "sim").rglob("*.py")
    offenders = {
        str(path.relative_to(ROOT)): sorted(named)
        for path in service
        if path != REGISTRY_FILE and (named := _named_wallets(path))
    }
    assert offenders == {}


def test_a_wallet_package_never_imports_another() -> None:
    offenders = {}
    for wallet in WALLET_PACKAGES:
        for path in (ROOT / "channels" / wallet).rglob("*.py"):
            if others := _named_wallets(path) - {wallet}:
                offenders[str(path.relative_to(ROOT))] = sorted(others)
    assert offenders == {}


EXAMPLES = {
    ("router/models.py", "alipay"): "the OpenAPI example of a payment that names its wallet",
    ("router/cli/dev.py", "wechat"): "`payrouter dev` shows paying a QR code at one simulator",
}
"""Wallet names the router spells out, each an example for people, not a table to extend."""


def test_the_router_names_a_wallet_only_in_examples() -> None:
    """What the router knows per wallet comes from the registry, so a new channel edits no
    router module: a wallet name as a string in router code is a list that would miss it."""
    named = {
        (str(path.relative_to(ROOT)), node.value)
        for path in (ROOT / "router").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Constant) and node.value in WALLETS
    }
    assert named == set(EXAMPLES)
