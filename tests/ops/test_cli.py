"""`payrouter serve --help` lists every PAYROUTER_* variable with its default; `--version`;
a bad PAYROUTER_LOG_FORMAT is one line and exit code 2 (real subprocesses)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from router.cli.environment import VARIABLES, default_of
from router.settings import Settings
from tests.ops.promtool import ROOT

SAMPLES = {
    "PAYROUTER_ROUTING": "other.yaml",
    "PAYROUTER_HOST": "10.1.2.3",
    "PAYROUTER_WEBHOOK_SCHEDULE": "1s,2s",
    "PAYROUTER_REDIS_RETENTION": "3d",
}
"""A value other than the default for variables that are not a number of seconds."""


def payrouter(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("payrouter")
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | (env or {})
    return subprocess.run(  # noqa: S603 - our own command
        [str(exe), *args], capture_output=True, text=True, env=environment, timeout=60, check=False
    )


def variables_read_by_the_code() -> set[str]:
    found: set[str] = set()
    for package in ("router", "channels"):
        for path in (ROOT / package).rglob("*.py"):
            found |= set(re.findall(r"\bPAYROUTER_[A-Z0-9_]+\b", path.read_text()))
    return found


def test_serve_help_lists_every_variable_with_its_default() -> None:
    done = payrouter("serve", "--help")
    assert done.returncode == 0, done.stderr
    listed = {v.name: v for v in VARIABLES}
    missing = variables_read_by_the_code() - set(listed)
    assert not missing, f"read in router/ or channels/ but not in serve --help: {missing}"
    for name, variable in listed.items():
        line = next(line for line in done.stdout.splitlines() if line.split()[:1] == [name])
        assert line.rstrip().endswith(f"[{default_of(variable)}]"), line


def test_defaults_are_read_from_the_settings_each_variable_sets() -> None:
    for variable in VARIABLES:
        if isinstance(variable.default, str):
            continue
        changed = Settings.from_env({variable.name: SAMPLES.get(variable.name, "7")})
        assert default_of(variable, changed) != default_of(variable), variable.name


def test_version() -> None:
    done = payrouter("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"payrouter, version {version('payrouter')}"


def test_a_bad_log_format_is_one_line_and_exit_2() -> None:
    done = payrouter("serve", env={"PAYROUTER_LOG_FORMAT": "xml"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Error: PAYROUTER_LOG_FORMAT must be json or console, not 'xml'"
    ]
