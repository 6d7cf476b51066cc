"""`payrouter` as operators run it: a real process, its exit code and what it prints.

Every misconfiguration ends with one line on stderr naming what to fix and exit code 2, never
a traceback; merchant commands refuse nonsense before it reaches the store.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from channels.wechat.sandbox import ensure_sandbox
from router.__main__ import main
from tests.conftest import loopback_socket

ROOT = Path(__file__).parents[2]
Run = Callable[..., subprocess.CompletedProcess[str]]


def payrouter(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m router ARGS` in a clean environment (no PAYROUTER_* from the caller)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(  # noqa: S603 - our own command, fixed argv
        [sys.executable, "-m", "router", *args],
        env=base | (env or {}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )


UNREACHED_DATABASE = {"PAYROUTER_DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}
"""What `serve` needs beside a Redis, for tests whose store is refused first (the store is
opened before the database, so this one is never reached)."""


def one_line_exit_2(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The error line, after checking the shape every configuration error must have."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def good_routing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A routing file that loads: one WeChat account with real sandbox credentials."""
    folder = tmp_path_factory.mktemp("routing")
    sandbox = ensure_sandbox(folder / "sandbox")
    path = folder / "routing.yaml"
    path.write_text(
        "version: 1\naccounts:\n  wechat_main:\n    type: wechat\n"
        "    base_url: http://127.0.0.1:9\n"
        f"    credentials:\n      file: {sandbox.credentials_path}\n"
    )
    return path


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is reserved but refuses connections (nothing listens)."""
    with loopback_socket() as sock:
        yield sock.getsockname()[1]


@pytest.fixture
def busy_port() -> Iterator[tuple[str, int]]:
    """A loopback address something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()


def test_version() -> None:
    result = payrouter("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"payrouter, version \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(
    "verb",
    [
        ["merchants", "list"],
        ["serve"],
        ["routes", "explain", "--method", "qr"],
    ],
)
def test_redis_that_refuses_connections(
    verb: list[str], closed_port: int, good_routing: Path
) -> None:
    url = f"redis://user:hunter2@127.0.0.1:{closed_port}/0"
    # `serve` needs a database beside a Redis; the store is opened first, and refused.
    database = f"postgresql://u@127.0.0.1:{closed_port}/db"
    env = {"PAYROUTER_REDIS_URL": url, "PAYROUTER_DATABASE_URL": database}
    result = payrouter(*verb, env=env | {"PAYROUTER_ROUTING": str(good_routing)})
    line = one_line_exit_2(result, "PAYROUTER_REDIS_URL", f"127.0.0.1:{closed_port}")
    assert "hunter2" not in result.stderr + result.stdout, line


@pytest.mark.parametrize(
    ("url", "verb"),
    [
        ("foo", ["merchants", "list"]),
        ("redis://:x@/", ["serve"]),
        ("redis://127.0.0.1:99999/0", ["serve"]),
        ("redis://127.0.0.1:6379/zero", ["merchants", "list"]),
        ("redis://127.0.0.1:6379/0?socket_timeout=soon", ["merchants", "list"]),
    ],
)
def test_redis_url_that_is_garbage(url: str, verb: list[str], good_routing: Path) -> None:
    result = payrouter(
        *verb, env={"PAYROUTER_REDIS_URL": url, "PAYROUTER_ROUTING": str(good_routing)}
    )
    one_line_exit_2(result, "PAYROUTER_REDIS_URL")
    assert ":x@" not in result.stderr


@pytest.mark.parametrize(
    "verb",
    [
        ["merchants", "list"],
        ["merchants", "create", "Shop"],
        ["merchants", "update", "mch_x1234567", "--no-notify-url"],
    ],
)
def test_merchant_commands_without_a_store(verb: list[str]) -> None:
    one_line_exit_2(payrouter(*verb), "PAYROUTER_REDIS_URL", "payrouter dev")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PAYROUTER_SECRET_KEY": "not-base64!"}, "PAYROUTER_SECRET_KEY"),
        ({"PAYROUTER_SECRET_KEY": base64.b64encode(b"short").decode()}, "PAYROUTER_SECRET_KEY"),
        ({"PAYROUTER_PORT": "http"}, "PAYROUTER_PORT"),
        ({"PAYROUTER_PORT": "٨٠"}, "PAYROUTER_PORT"),
        ({"PAYROUTER_PUBLIC_URL": "foo"}, "PAYROUTER_PUBLIC_URL"),
        ({"PAYROUTER_REQUERY_AFTER": "nan"}, "PAYROUTER_REQUERY_AFTER"),
        ({"PAYROUTER_WEBHOOK_SCHEDULE": "0s,²s"}, "PAYROUTER_WEBHOOK_SCHEDULE"),
        ({"PAYROUTER_HOST": "999.1.1.1"}, "cannot listen on 999.1.1.1"),
        ({"PAYROUTER_WORKER_LEASE": "0"}, "PAYROUTER_WORKER_LEASE"),
        # The routing file's default 10 s timeouts need 3 x 10 + 5 s.
        ({"PAYROUTER_WORKER_LEASE": "34"}, "at least 35 seconds"),
    ],
)
def test_bad_environment(env: dict[str, str], fragment: str, good_routing: Path) -> None:
    result = payrouter("serve", env=env | {"PAYROUTER_ROUTING": str(good_routing)})
    one_line_exit_2(result, fragment)
    if "PAYROUTER_SECRET_KEY" in env:
        assert env["PAYROUTER_SECRET_KEY"] not in result.stderr


def test_broken_routing_file_at_start(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("version: 2\naccounts:\n  main:\n    type: paypal\n")
    line = one_line_exit_2(payrouter("serve", env={"PAYROUTER_ROUTING": str(path)}), str(path))
    assert f"payrouter routes check {path}" in line  # where to see the other problems


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (None, "cannot read"),
        ("accounts: [\n", "not valid YAML"),
        (
            "version: 1\naccounts:\n  main:\n    type: wechat\n    base_url: http://127.0.0.1:9\n"
            "    credentials:\n      file: absent.json\n",
            "absent.json",
        ),
    ],
)
def test_unusable_routing_file_at_start(tmp_path: Path, text: str | None, fragment: str) -> None:
    path = tmp_path / "routing.yaml"
    if text is not None:
        path.write_text(text)
    one_line_exit_2(payrouter("serve", env={"PAYROUTER_ROUTING": str(path)}), str(path), fragment)


def test_router_port_in_use(busy_port: tuple[str, int], good_routing: Path) -> None:
    host, port = busy_port
    env = {"PAYROUTER_PORT": str(port), "PAYROUTER_ROUTING": str(good_routing)}
    one_line_exit_2(payrouter("serve", env=env), f"{host}:{port}", "PAYROUTER_PORT", "in use")


def test_dev_port_in_use(busy_port: tuple[str, int]) -> None:
    # The simulators start first on their fixed ports; whichever port is taken is named. The
    # default sandbox folder: the shipped routing file reads the simulators' keys from there
    # (a fresh clone has none until the simulators make them).
    env = {"PAYROUTER_PORT": str(busy_port[1])}
    one_line_exit_2(payrouter("dev", env=env), "cannot listen")


def test_simulator_port_in_use() -> None:
    # Any 127/8 address is loopback on Linux: take 8091 on one nobody else uses.
    for last in range(77, 120):
        host = f"127.0.0.{last}"
        with socket.socket() as sock:
            try:
                sock.bind((host, 8091))
            except OSError:
                continue
            sock.listen()
            result = payrouter("sim", "--host", host)
        one_line_exit_2(result, f"wechat simulator cannot listen on {host}:8091", "in use")
        return
    pytest.skip("no free 127.0.0.x address for port 8091")


def test_unusable_sandbox_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = payrouter("sim", "--sandbox-dir", str(blocker / "sandbox"))
    one_line_exit_2(result, "--sandbox-dir", str(blocker))


def test_secret_key_that_does_not_open_the_store(redis_url: str, good_routing: Path) -> None:
    first = base64.b64encode(b"1" * 32).decode()
    other = base64.b64encode(b"2" * 32).decode()
    env = {"PAYROUTER_REDIS_URL": redis_url, "PAYROUTER_ROUTING": str(good_routing)}
    created = payrouter("merchants", "create", "Shop", env=env | {"PAYROUTER_SECRET_KEY": first})
    assert created.returncode == 0, created.stderr

    wrong = payrouter("merchants", "list", env=env | {"PAYROUTER_SECRET_KEY": other})
    one_line_exit_2(wrong, "PAYROUTER_SECRET_KEY")
    assert other not in wrong.stderr
    # `serve` needs a database beside a Redis (never reached: the store is refused first).
    database = {"PAYROUTER_DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}
    one_line_exit_2(payrouter("serve", env=env | database), "PAYROUTER_SECRET_KEY is not set")

    right = payrouter("merchants", "list", env=env | {"PAYROUTER_SECRET_KEY": first})
    assert right.returncode == 0, right.stderr


# --- merchant commands: what they accept ------------------------------------------------


@pytest.fixture
def cli(redis_url: str) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return payrouter(*args, env={"PAYROUTER_REDIS_URL": redis_url})

    return run


def created(cli: Run, *args: str) -> dict[str, str]:
    result = cli("merchants", "create", *args, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return {"id": data["merchant"]["id"], "secret": data["secret"], "key_id": data["key_id"]}


def listed(cli: Run) -> list[dict[str, object]]:
    result = cli("merchants", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def refused(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_create_list_rotate(cli: Run) -> None:
    shop = created(cli, "  Shop ")
    assert shop["secret"].startswith("sk_test_")
    [row] = listed(cli)
    assert row["id"] == shop["id"]
    assert row["name"] == "Shop"
    assert shop["secret"] not in json.dumps(row)

    rotated = cli("merchants", "rotate-key", shop["id"], "--grace", "60", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["secret"] != shop["secret"]
    [row] = listed(cli)
    keys = {k["id"]: k for k in row["keys"]}  # type: ignore[attr-defined]
    old = keys[shop["key_id"]]
    assert isinstance(old["expires_at_ms"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", old["expires_at"])
    assert keys[new["key_id"]]["expires_at"] is None

    text = cli("merchants", "list").stdout
    assert f"expires {old['expires_at']}" in text
    assert str(old["expires_at_ms"]) not in text  # people read times, not epoch milliseconds


def test_rotate_unknown_merchant(cli: Run) -> None:
    result = cli("merchants", "rotate-key", "mch_nobody0000")
    assert result.returncode == 1
    assert "no merchant mch_nobody0000" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["create", "X", "--notify-url", "foo"], "must be an http or https URL"),
        (["create", "X", "--notify-url", "http://[/hook"], "not a valid URL"),
        (["create", "X", "--notify-url", "https://u:p@shop.example/h"], "credentials"),
        (["create", "X", "--mode", "live", "--notify-url", "http://93.184.216.34/h"], "https"),
        (["create", "X", "--mode", "live", "--notify-url", "https://10.0.0.1/h"], "public"),
        (["create", "X", "--mode", "live", "--notify-url", "https://100.64.0.1/"], "public"),
        (["create", "X", "--mode", "live", "--notify-url", "https://localhost/h"], "public"),
        (["create", "X", "--mode", "live", "--notify-url", "https://shop.invalid/"], "resolve"),
        (["create", ""], "must not be empty"),
        (["create", " \t "], "must not be empty"),
        (["create", "a\nb"], "control characters"),
        (["create", "x" * 201], "at most 200"),
        (["rotate-key", "mch_x1234567", "--grace", "-5"], "--grace"),
        (["rotate-key", "mch_x1234567", "--grace", "99999999"], "--grace"),
        (["rotate-webhook-secret", "mch_x1234567", "--grace", "-1"], "--grace"),
        (["update", "mch_x1234567", "--notify-url", "foo"], "--notify-url"),
        (["update", "mch_x1234567"], "nothing to change"),
        (["update", "mch_x1234567", "--notify-url", "https://a.ex/", "--no-notify-url"], "exclude"),
    ],
)
def test_merchant_commands_refuse_nonsense(redis_url: str, args: list[str], fragment: str) -> None:
    # In process (a subprocess each would cost a second): the exit code and message are the
    # command's own; test_nonsense_as_a_process checks one of them end to end.
    runner = CliRunner(env={"PAYROUTER_REDIS_URL": redis_url})
    result = runner.invoke(main, ["merchants", *args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert fragment in result.stderr
    listing = runner.invoke(main, ["merchants", "list", "--json"])
    assert json.loads(listing.stdout) == []


def test_nonsense_as_a_process(cli: Run) -> None:
    refused(cli("merchants", "create", "X", "--notify-url", "foo"), "--notify-url")
    assert listed(cli) == []


def test_live_merchant_with_a_public_endpoint(cli: Run) -> None:
    shop = created(cli, "Shop", "--mode", "live", "--notify-url", "https://93.184.216.34/hooks")
    assert shop["secret"].startswith("sk_live_")


def test_update_notify_url(cli: Run) -> None:
    shop = created(cli, "Shop")
    changed = cli("merchants", "update", shop["id"], "--notify-url", "http://127.0.0.1:9/h")
    assert changed.returncode == 0, changed.stderr
    assert listed(cli)[0]["notify_url"] == "http://127.0.0.1:9/h"

    cleared = cli("merchants", "update", shop["id"], "--no-notify-url", "--require-signed")
    assert cleared.returncode == 0, cleared.stderr
    row = listed(cli)[0]
    assert row["notify_url"] is None
    assert row["require_signed"] is True

    missing = cli("merchants", "update", "mch_nobody0000", "--no-notify-url")
    assert missing.returncode == 1
    assert "no merchant mch_nobody0000" in missing.stderr


def test_live_key_needs_a_live_endpoint(cli: Run) -> None:
    shop = created(cli, "Shop", "--notify-url", "http://127.0.0.1:9/h")
    live = cli("merchants", "rotate-key", shop["id"], "--mode", "live")
    assert live.returncode == 1
    assert "merchants update" in live.stderr
    assert "sk_live_" not in live.stdout

    public = "https://93.184.216.34/h"
    assert cli("merchants", "update", shop["id"], "--notify-url", public).returncode == 0
    assert cli("merchants", "rotate-key", shop["id"], "--mode", "live").returncode == 0
    # From now on its default endpoint receives live events: the live checks apply.
    refused(cli("merchants", "update", shop["id"], "--notify-url", "http://127.0.0.1:9/h"), "https")
    assert listed(cli)[0]["notify_url"] == public


def test_every_verb_has_help() -> None:
    # In process: --help runs no start-up code.
    for verb in (
        [],
        ["dev"],
        ["serve"],
        ["sim"],
        ["merchants"],
        ["merchants", "create"],
        ["merchants", "update"],
        ["merchants", "list"],
        ["merchants", "rotate-key"],
        ["merchants", "rotate-webhook-secret"],
        ["routes", "check"],
        ["routes", "explain"],
        ["risk", "check"],
        ["risk", "explain"],
        ["merchants", "webhook-endpoints"],
        ["merchants", "enable-endpoint"],
        ["bench"],
        ["db"],
        ["db", "migrate"],
        ["db", "status"],
    ):
        result = CliRunner().invoke(main, [*verb, "--help"])
        assert result.exit_code == 0, verb
        assert "Usage:" in result.output


def _verbs(help_text: str) -> set[str]:
    """The command names under `Commands:` in a group's --help."""
    listing = help_text.split("Commands:\n", 1)[1]
    return {line.split()[0] for line in listing.splitlines() if line.startswith("  ")}


@pytest.mark.parametrize(
    ("group", "verbs"),
    [
        (
            [],
            {
                "bench",
                "db",
                "dev",
                "ledger",
                "merchants",
                "recon",
                "risk",
                "routes",
                "serve",
                "settle",
                "sim",
            },
        ),
        (
            ["merchants"],
            {
                "create",
                "enable-endpoint",
                "list",
                "rotate-key",
                "rotate-webhook-secret",
                "update",
                "webhook-endpoints",
            },
        ),
        (["routes"], {"check", "explain"}),
        (["risk"], {"check", "explain"}),
        (["db"], {"migrate", "status"}),
    ],
)
def test_help_lists_every_verb(group: list[str], verbs: set[str]) -> None:
    # As a process: the verbs must be registered by the command itself, not by whatever a
    # test happened to import first.
    result = payrouter(*group, "--help")
    assert result.returncode == 0, result.stderr
    assert _verbs(result.stdout) == verbs
