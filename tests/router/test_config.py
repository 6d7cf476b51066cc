"""Routing-file validation: every problem named by file, line and path."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from router.__main__ import main
from router.config import ConfigError, load_config
from router.settings import Settings, SettingsError

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
    ok = runner.invoke(main, ["routes", "check", str(write(tmp_path, VALID)), "--json"])
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
