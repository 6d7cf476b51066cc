"""PAYROUTER_DATABASE_URL as read at start-up: what is accepted, what the engine is given,
and that the password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.record.connect import describe, engine_url
from router.settings import Settings, SettingsError


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://payrouter:s3cret@db.internal:5432/payrouter",
        "postgres://payrouter@127.0.0.1/payrouter",
        "postgresql://payrouter:s3cret@[::1]:6432/record?sslmode=require",
        "postgresql://payrouter:p%40ss@db/payrouter?ssl=verify-full",
    ],
)
def test_accepted_as_given(url: str) -> None:
    settings = Settings.from_env({"PAYROUTER_DATABASE_URL": url})
    assert settings.database_url == url
    assert "s3cret" not in repr(settings)


def test_unset_is_the_embedded_database(tmp_path: Path) -> None:
    assert Settings.from_env({}).database_url is None
    assert Settings.from_env({"PAYROUTER_DATABASE_URL": ""}).database_url is None
    url = engine_url(None, tmp_path)
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "record.sqlite3")
    assert describe(url) == f"embedded database {tmp_path / 'record.sqlite3'}"


def test_the_engine_speaks_asyncpg_and_the_password_stays_hidden(tmp_path: Path) -> None:
    url = engine_url("postgresql://pay:p%40ss@db:5433/rec?sslmode=require", tmp_path)
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "pay",
        "p@ss",
        "db",
        5433,
        "rec",
    )
    assert dict(url.query) == {"ssl": "require"}
    assert describe(url) == "PostgreSQL at postgresql://pay:***@db:5433/rec?ssl=require"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://127.0.0.1/0", "must be a postgresql://"),
        ("postgresql+asyncpg://u@h/db", "must be a postgresql://"),
        ("postgresql:///payrouter", "must name a host"),
        ("postgresql://u:pw@h:0x10/db", "not a valid URL"),
        ("postgresql://u:pw@h", "must name one database"),
        ("postgresql://u:pw@h/a/b", "must name one database"),
        ("postgresql://u:pw@h/db?sslmode", "sslmode must be one of"),
        ("postgresql://u:pw@h/db?application_name=x", "unknown query parameter"),
    ],
)
def test_refused_in_one_line_without_the_password(url: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"PAYROUTER_DATABASE_URL": url})
    line = caught.value.line()
    assert line.startswith("PAYROUTER_DATABASE_URL")
    assert fragment in line
    assert ":pw@" not in line


@pytest.mark.parametrize(
    ("value", "seconds"), [("", 7 * 86400.0), ("30s", 30.0), ("5m", 300.0), ("7d", 604800.0)]
)
def test_redis_retention_is_one_duration(value: str, seconds: float) -> None:
    env = {"PAYROUTER_REDIS_RETENTION": value}
    assert Settings.from_env(env).redis_retention_s == seconds


@pytest.mark.parametrize("value", ["0s", "7", "7 days", "1d,2d", "-1d"])
def test_a_bad_redis_retention_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="PAYROUTER_REDIS_RETENTION"):
        Settings.from_env({"PAYROUTER_REDIS_RETENTION": value})
