"""Routing-file validation: every problem named by file, line and path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from channels.wechat.sandbox import ensure_sandbox
from router.__main__ import main
from router.routing.config import ConfigError, load_config
from router.settings import ConfigurationError, Settings, SettingsError, redacted

VALID = """\
version: 1
accounts:
  wechat_main:
    type: wechat
    base_url: http://127.0.0.1:8091
    credentials:
      file: creds.json
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid() -> None:
    loaded = load_config(Path(__file__).parents[2] / "config" / "routing.yaml")
    assert list(loaded.config.accounts) == ["wechat_main", "alipay_main", "unionpay_main"]
    # Payments no rule matches go to their wallet's accounts: the learning strategy there.
    assert loaded.config.defaults.strategy == "adaptive"
    assert set(loaded.config.fees) == set(loaded.config.accounts)


def test_fees_must_name_accounts_and_be_percentages(tmp_path: Path) -> None:
    text = VALID + "fees:\n  wechat_main: 0.6\n  wechat_nope: 0.38\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert any(
        "fees.wechat_nope: no account named 'wechat_nope'" in p for p in caught.value.problems
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID + "fees: {wechat_main: 12}\n"))
    assert any("fees.wechat_main" in p for p in caught.value.problems)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID + "adaptive: {tolerance: 0.5}\n"))
    assert any("adaptive.tolerance" in p for p in caught.value.problems)


def test_valid_file_loads(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, VALID))
    assert loaded.base_dir == tmp_path.resolve()
    assert len(loaded.digest) == 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID.replace("version: 1", "version: 2"), ":1: version: Input should be 1"),
        (VALID.replace("    base_url: http://127.0.0.1:8091\n", ""), ":4: accounts.wechat_main"),
        (VALID.replace("http://127.0.0.1:8091", "ftp://x"), ":5: accounts.wechat_main.base_url"),
        (VALID.replace("wechat_main", "Bad-Name"), "accounts.Bad-Name"),
        (VALID + "surprise: 1\n", ":8: surprise: Extra inputs are not permitted"),
        (VALID.replace("type: wechat", "type: paypal"), "accounts.wechat_main"),
        ("accounts: [", "not valid YAML"),
        ("- 1\n- 2\n", "the document must be a mapping"),
    ],
)
def test_invalid_files_are_refused_precisely(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_routes_check_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    sandbox = ensure_sandbox(tmp_path / "sandbox")
    loadable = VALID.replace("creds.json", str(sandbox.credentials_path))
    ok = runner.invoke(main, ["routes", "check", str(write(tmp_path, loadable)), "--json"])
    assert ok.exit_code == 0, ok.output
    assert '"valid": true' in ok.output
    bad = runner.invoke(main, ["routes", "check", str(write(tmp_path, "version: 1\n"))])
    assert bad.exit_code == 1
    assert "accounts: Field required" in bad.output


def test_settings_from_env() -> None:
    settings = Settings.from_env({"PAYROUTER_PORT": "9000", "PAYROUTER_HOST": "0.0.0.0"})
    assert settings.base_url == "http://127.0.0.1:9000"
    assert Settings.from_env({}).redis_url is None
    with pytest.raises(SettingsError, match="PAYROUTER_PORT"):
        Settings.from_env({"PAYROUTER_PORT": "http"})
    with pytest.raises(SettingsError, match="32 bytes") as caught:
        Settings.from_env({"PAYROUTER_SECRET_KEY": "c2hvcnQ="})
    assert "c2hvcnQ" not in str(caught.value)


def test_redis_wait_from_env() -> None:
    told = Settings.from_env(
        {"PAYROUTER_REDIS_WAIT_REPLICAS": "1", "PAYROUTER_REDIS_WAIT_TIMEOUT": "0.05"}
    )
    assert (told.redis_wait_replicas, told.redis_wait_s) == (1, 0.05)
    assert Settings.from_env({}).redis_wait_replicas == 0
    for bad in ("-1", "one", "17", "1.5"):
        with pytest.raises(SettingsError, match="PAYROUTER_REDIS_WAIT_REPLICAS"):
            Settings.from_env({"PAYROUTER_REDIS_WAIT_REPLICAS": bad})


def test_worker_lease_from_env() -> None:
    assert Settings.from_env({"PAYROUTER_WORKER_LEASE": "42.5"}).workers.lease_s == 42.5
    assert Settings.from_env({}).workers.lease_s is None  # derived from the routing file


REFERENCES = """\
version: 1
accounts:
  wechat_main:
    type: wechat
    base_url: ftp://nowhere
    credentials:
      file: creds.json
rules:
  - name: big
    accounts: [wechat_main, alipay_gone]
  - name: big
    strategy: sideways
    accounts: [wechat_main]
"""


def test_schema_and_reference_errors_are_reported_together(tmp_path: Path) -> None:
    path = write(tmp_path, REFERENCES)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert f"{path}:5: accounts.wechat_main.base_url" in problems[0]
    assert any(
        f"{path}:10: rules.0.accounts.1: no account named 'alipay_gone'" in p for p in problems
    )
    assert any(f"{path}:11: rules.1.name: rule name 'big' is used twice" in p for p in problems)
    assert any(f"{path}:12: rules.1.strategy" in p for p in problems)
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)  # in file order, as an editor walks them
    # At start-up the first problem is shown on one line, pointing at the rest.
    assert "\n" not in caught.value.line()
    assert f"(and {len(problems) - 1} more problems: payrouter routes check {path})" in (
        caught.value.line()
    )


def test_routes_check_reports_every_kind_of_problem_in_one_run(tmp_path: Path) -> None:
    text = REFERENCES.replace(
        "rules:",
        "  alipay_main:\n    type: alipay\n    base_url: http://127.0.0.1:9\n"
        "    credentials:\n      file: alipay.json\nrules:",
    )
    path = write(tmp_path, text)
    result = CliRunner().invoke(main, ["routes", "check", str(path), "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert any(":5: accounts.wechat_main.base_url" in p for p in problems)  # schema
    assert any("no account named 'alipay_gone'" in p for p in problems)  # reference
    assert any(
        f"{path}:12: accounts.alipay_main.credentials.file: " in p and "alipay.json" in p
        for p in problems
    )  # credentials of the account that is valid on its own


def test_routes_check_names_a_missing_credentials_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    result = CliRunner().invoke(main, ["routes", "check", str(path), "--json"])
    assert result.exit_code == 1, result.output
    [problem] = json.loads(result.stdout)["problems"]
    assert problem.startswith(f"{path}:7: accounts.wechat_main.credentials.file: ")
    assert "creds.json" in problem
    assert "cannot read" in problem


def test_routes_check_names_an_unset_credentials_variable(tmp_path: Path) -> None:
    text = VALID.replace("file: creds.json", "env: PAYROUTER_TEST_NEVER_SET")
    result = CliRunner().invoke(main, ["routes", "check", str(write(tmp_path, text))])
    assert result.exit_code == 1
    assert ":7: accounts.wechat_main.credentials.env: " in result.stderr
    assert "PAYROUTER_TEST_NEVER_SET is not set" in result.stderr


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\naccounts:\n  a: [\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line().startswith(f"{path}:4: not valid YAML: ")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PAYROUTER_REDIS_URL": "foo"}, "PAYROUTER_REDIS_URL"),
        ({"PAYROUTER_REDIS_URL": "redis://:x@/"}, "PAYROUTER_REDIS_URL"),
        ({"PAYROUTER_REDIS_URL": "unix://"}, "PAYROUTER_REDIS_URL"),
        ({"PAYROUTER_REDIS_URL": "redis://h:port/0"}, "PAYROUTER_REDIS_URL"),
        ({"PAYROUTER_PUBLIC_URL": "ftp://x"}, "PAYROUTER_PUBLIC_URL"),
        ({"PAYROUTER_PORT": "８０８０"}, "PAYROUTER_PORT"),
        ({"PAYROUTER_PROCESSING_GRACE": "inf"}, "PAYROUTER_PROCESSING_GRACE"),
        ({"PAYROUTER_WEBHOOK_SCHEDULE": "5٥s"}, "PAYROUTER_WEBHOOK_SCHEDULE"),
        ({"PAYROUTER_WORKER_LEASE": "-5"}, "PAYROUTER_WORKER_LEASE"),
        ({"PAYROUTER_WORKER_LEASE": "30s"}, "PAYROUTER_WORKER_LEASE"),
        ({"PAYROUTER_WORKER_LEASE": "nan"}, "PAYROUTER_WORKER_LEASE"),
    ],
)
def test_settings_refuse_garbage(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    assert name in caught.value.line()
    assert ":x@" not in caught.value.line()


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://u:p@redis.internal", "unix:///run/redis.sock"]
)
def test_settings_accept_redis_urls(url: str) -> None:
    assert Settings.from_env({"PAYROUTER_REDIS_URL": url}).redis_url == url


def test_redacted_hides_the_password() -> None:
    assert redacted("redis://user:hunter2@h:1/0") == "redis://user:***@h:1/0"
    assert redacted("redis://h:1/0") == "redis://h:1/0"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--amount", "-5"], "amount"),
        (["--metadata", "colour"], "use key=value"),
        (["--metadata", "=red"], "use key=value"),
        (["--at", "yesterday"], "at"),
    ],
)
def test_routes_explain_refuses_nonsense(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(main, ["routes", "explain", "--method", "qr", *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr
