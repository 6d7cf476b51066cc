"""`payrouter db migrate|status` and `serve` with PAYROUTER_DATABASE_URL, as operators run them:
real processes, exit codes and what they print; bad URLs are one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness.postgres import PostgresServer
from router.app import RECORD, build_app
from router.record import head
from router.settings import Settings
from tests.conftest import loopback_socket, serve
from tests.router.test_cli import good_routing, one_line_exit_2, payrouter

__all__ = ["good_routing"]


@pytest.mark.postgres
def test_migrate_creates_then_does_nothing(postgres_url: str) -> None:
    env = {"PAYROUTER_DATABASE_URL": postgres_url}
    first = payrouter("db", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert f"schema at revision {head()} (from an empty database)" in first.stdout
    assert "PostgreSQL at postgresql://postgres@127.0.0.1:" in first.stdout

    again = payrouter("db", "migrate", env=env)
    assert again.returncode == 0, again.stderr
    assert f"schema at revision {head()}, already current" in again.stdout

    status = payrouter("db", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"database revision: {head()}" in status.stdout


@pytest.mark.postgres
def test_status_of_an_empty_database_names_the_command(postgres_url: str) -> None:
    result = payrouter("db", "status", env={"PAYROUTER_DATABASE_URL": postgres_url})
    assert result.returncode == 1
    assert "database revision: none" in result.stdout
    assert "payrouter db migrate" in result.stdout


def test_migrate_the_embedded_database(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    result = payrouter("db", "migrate", "--sandbox-dir", str(sandbox))
    assert result.returncode == 0, result.stderr
    assert f"embedded database {sandbox / 'record.sqlite3'}" in result.stdout
    assert (sandbox / "record.sqlite3").is_file()
    again = payrouter("db", "migrate", env={"PAYROUTER_SANDBOX_DIR": str(sandbox)})
    assert "already current" in again.stdout


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://u:hunter2@127.0.0.1/x", "must be a postgresql://"),
        ("postgresql://u:hunter2@/payrouter", "must name a host"),
        ("postgresql://u:hunter2@127.0.0.1:99999/payrouter", "not a valid URL"),
        ("postgresql://u:hunter2@127.0.0.1:5432/", "must name one database"),
        ("postgresql://u:hunter2@127.0.0.1/db?sslmode=sometimes", "sslmode must be one of"),
        ("postgresql://u:hunter2@127.0.0.1/db?options=-c", "unknown query parameter"),
    ],
)
def test_a_bad_url_is_one_line(url: str, fragment: str) -> None:
    result = payrouter("db", "migrate", env={"PAYROUTER_DATABASE_URL": url})
    one_line_exit_2(result, "PAYROUTER_DATABASE_URL", fragment)
    assert "hunter2" not in result.stderr + result.stdout


def test_an_unreachable_database_is_one_line() -> None:
    with loopback_socket() as closed:
        port = closed.getsockname()[1]
        url = f"postgresql://u:hunter2@127.0.0.1:{port}/payrouter"
        result = payrouter("db", "migrate", env={"PAYROUTER_DATABASE_URL": url})
    one_line_exit_2(result, "PAYROUTER_DATABASE_URL", f"127.0.0.1:{port}")
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_one_line(postgres_server: PostgresServer) -> None:
    url = postgres_server.url("no_such_database")
    result = payrouter("db", "status", env={"PAYROUTER_DATABASE_URL": url})
    one_line_exit_2(result, "PAYROUTER_DATABASE_URL", "no_such_database", "does not exist")


@pytest.mark.postgres
def test_serve_refuses_a_database_without_the_schema(postgres_url: str, good_routing: Path) -> None:
    env = {"PAYROUTER_DATABASE_URL": postgres_url, "PAYROUTER_ROUTING": str(good_routing)}
    one_line_exit_2(payrouter("serve", env=env), "PAYROUTER_DATABASE_URL", "payrouter db migrate")


def test_serve_refuses_redis_without_a_database(good_routing: Path) -> None:
    # Checked before anything is opened: the Redis named need not even exist.
    env = {"PAYROUTER_REDIS_URL": "redis://127.0.0.1:1/0", "PAYROUTER_ROUTING": str(good_routing)}
    one_line_exit_2(payrouter("serve", env=env), "PAYROUTER_DATABASE_URL", "PAYROUTER_REDIS_URL")


@pytest.mark.postgres
async def test_a_router_opens_checks_and_closes_the_database(
    postgres_server: PostgresServer, postgres_migrated_url: str, good_routing: Path
) -> None:
    settings = Settings(database_url=postgres_migrated_url, routing_path=good_routing)
    app = await build_app(settings, run_worker=False, watch_config=False, run_dispatcher=False)
    database = postgres_migrated_url.rsplit("/", 1)[1]
    sessions = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"  # noqa: S608
    runner = await serve(app, loopback_socket())
    try:
        assert app[RECORD].description.startswith("PostgreSQL at ")
        assert int(postgres_server.sql(sessions)) >= 1
    finally:
        await runner.cleanup()
    assert int(postgres_server.sql(sessions)) == 0


async def test_without_the_variable_a_router_opens_the_embedded_database(
    good_routing: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = tmp_path / "sandbox"
    caplog.set_level("WARNING", logger="payrouter")
    app = await build_app(
        Settings(routing_path=good_routing, sandbox_dir=sandbox),
        run_worker=False,
        watch_config=False,
        run_dispatcher=False,
    )
    runner = await serve(app, loopback_socket())
    try:
        assert app[RECORD].embedded
        assert (sandbox / "record.sqlite3").exists()
        said = [
            r.getMessage() for r in caplog.records if "PAYROUTER_DATABASE_URL" in r.getMessage()
        ]
        described = app[RECORD].description
        assert said == [
            f"PAYROUTER_DATABASE_URL is not set: the record is the {described} (sandbox only)"
        ]
        assert str(sandbox / "record.sqlite3") in said[0]
    finally:
        await runner.cleanup()
