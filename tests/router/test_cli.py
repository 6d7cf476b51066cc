"""`payrouter merchants ...` against a real redis-server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from router.__main__ import main


@pytest.fixture
def cli(redis_url: str) -> CliRunner:
    return CliRunner(env={"PAYROUTER_REDIS_URL": redis_url, "PAYROUTER_SECRET_KEY": ""})


def test_create_list_rotate(cli: CliRunner) -> None:
    created = cli.invoke(main, ["merchants", "create", "Shop", "--json"])
    assert created.exit_code == 0, created.output
    data = json.loads(created.output)
    mch, secret = data["merchant"]["id"], data["secret"]
    assert secret.startswith("sk_test_")

    listed = cli.invoke(main, ["merchants", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert secret not in listed.output
    [row] = json.loads(listed.output)
    assert row["id"] == mch
    assert [k["id"] for k in row["keys"]] == [data["key_id"]]

    rotated = cli.invoke(main, ["merchants", "rotate-key", mch, "--grace", "60", "--json"])
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.output)
    assert new["secret"] != secret
    keys = json.loads(cli.invoke(main, ["merchants", "list", "--json"]).output)[0]["keys"]
    expiring = {k["id"]: k["expires_at_ms"] for k in keys}
    assert expiring[data["key_id"]] is not None
    assert expiring[new["key_id"]] is None


def test_rotate_unknown_merchant(cli: CliRunner) -> None:
    result = cli.invoke(main, ["merchants", "rotate-key", "mch_nobody"])
    assert result.exit_code != 0
    assert "no merchant mch_nobody" in result.output


def test_merchant_commands_need_redis() -> None:
    result = CliRunner(env={"PAYROUTER_REDIS_URL": ""}).invoke(main, ["merchants", "list"])
    assert result.exit_code != 0
    assert "PAYROUTER_REDIS_URL" in result.output


def test_every_verb_has_help() -> None:
    runner = CliRunner()
    for verb in (
        [],
        ["dev"],
        ["serve"],
        ["sim"],
        ["merchants"],
        ["merchants", "create"],
        ["merchants", "list"],
        ["merchants", "rotate-key"],
        ["routes", "check"],
    ):
        result = runner.invoke(main, [*verb, "--help"])
        assert result.exit_code == 0, verb
        assert "Usage:" in result.output
