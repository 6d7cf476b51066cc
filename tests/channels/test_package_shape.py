"""Every wallet package has the same modules for the same roles, and the same entry points.

A reader who knows one wallet finds the same part under the same name in every other one; a
new wallet that names a part differently, or whose adapter skips the uniform entry points,
fails here.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

from channels.credentials import CredentialsBase, CredentialsRef
from channels.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
MODULES = {"__init__", "adapter", "config", "crypto", "notification", "sandbox"}
"""The top-level modules of a wallet package (beside `protocol/` and `sim/`)."""
PROTOCOL = {"__init__", "wire", "requests", "answers", "codes", "statement"}
CALLS = ("create", "query", "close", "refund", "refund_query", "statement")
ENTRY_POINTS = {
    "requests": {f"build_{call}_request" for call in CALLS},
    "answers": {f"parse_{call}_answer" for call in CALLS},
    "codes": {"map_trade_state", "map_refund_state"},
}


def _modules(folder: Path) -> set[str]:
    return {path.stem for path in folder.glob("*.py")}


@pytest.mark.parametrize("wallet", sorted(REGISTRY))
def test_a_wallet_package_has_the_shared_modules(wallet: str) -> None:
    package = ROOT / "channels" / wallet
    assert _modules(package) == MODULES
    assert sorted(p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__") == [
        "protocol",
        "sim",
    ]
    assert _modules(package / "protocol") == PROTOCOL


@pytest.mark.parametrize("wallet", sorted(REGISTRY))
def test_a_wallet_protocol_has_the_uniform_entry_points(wallet: str) -> None:
    for module, names in ENTRY_POINTS.items():
        loaded = importlib.import_module(f"channels.{wallet}.protocol.{module}")
        assert {name for name in names if not callable(getattr(loaded, name, None))} == set()


@pytest.mark.parametrize("wallet", sorted(REGISTRY))
def test_an_adapter_calls_the_uniform_entry_points(wallet: str) -> None:
    path = ROOT / "channels" / wallet / "adapter.py"
    called = {
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
    }
    expected = {
        f"{module}.{name}" for module in ("requests", "answers") for name in ENTRY_POINTS[module]
    }
    assert expected - called == set()


@pytest.mark.parametrize("wallet", sorted(REGISTRY))
def test_a_wallet_credential_bundle_is_the_shared_kind(wallet: str, tmp_path: Path) -> None:
    """Loading a bundle and writing it back are `CredentialsBase`'s, for every wallet."""
    spec = REGISTRY[wallet]
    importlib.import_module(f"channels.{wallet}.sandbox").ensure_sandbox(tmp_path)
    bundle_file = spec.sandbox_credentials(tmp_path)
    credentials = spec.load_credentials(CredentialsRef(file=str(bundle_file)), tmp_path)
    assert isinstance(credentials, CredentialsBase)
    assert credentials.bundle() == json.loads(bundle_file.read_text(encoding="utf-8"))
