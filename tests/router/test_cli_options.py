"""Command-line options and arguments refuse nonsense before anything starts: `bench` (no bench
is run here), merchant ids, blank strings, numbers that are not finite.

Each refusal is exit code 2 with click's message naming the option. A few run as real
processes; the rest in process (a subprocess each would cost a second), where the exit code
and message are the command's own.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from router.__main__ import main
from tests.router.test_cli import payrouter

TARGET = ["--target", "http://127.0.0.1:9"]
"""With it, bench would attach to a router instead of starting one (it never gets that far)."""


def refused_in_process(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit)
    assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--duration", "-1"], "'--duration'"),
        (["--concurrency", "0"], "'--concurrency'"),
        (["--rate", "nan"], "'--rate'"),
        (["--router-pid", "123"], "only with --target"),
    ],
)
def test_bench_refuses_nonsense_as_a_process(args: list[str], fragment: str) -> None:
    result = payrouter("bench", *args)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert fragment in result.stderr, result.stderr
    assert "redis-server" not in result.stderr  # nothing was started


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--duration", "0"], "'--duration'"),
        (["--duration", "nan"], "not a finite number"),
        (["--duration", "inf"], "'--duration'"),
        (["--duration", "91"], "'--duration'"),
        (["--count", "0"], "'--count'"),
        (["--count", "-3"], "'--count'"),
        (["--concurrency", "-4"], "'--concurrency'"),
        (["--concurrency", "100000"], "'--concurrency'"),
        (["--rate", "0"], "'--rate'"),
        (["--rate", "-1"], "'--rate'"),
        (["--rate", "inf"], "'--rate'"),
        (["--warmup", "-1"], "'--warmup'"),
        (["--processes", "0"], "counts from 1 to 16"),
        (["--processes", "-1"], "'--processes'"),
        (["--processes", "1,,2"], "'--processes'"),
        (["--processes", "١"], "'--processes'"),
        (["--scenarios", ","], "name at least one"),
        (["--scenarios", "nope"], "unknown nope"),
        (["--time-factor", "0"], "'--time-factor'"),
        (["--time-factor", "-1"], "'--time-factor'"),
        (["--time-factor", "nan"], "not a finite number"),
        (["--json-file", "/"], "'--json-file'"),
        (["--sandbox-dir", "/etc/hostname"], "'--sandbox-dir'"),
        (["--target", "foo"], "must be an http or https URL"),
        (["--target", "http://[::1/"], "'--target'"),
        (["--wechat-sim", "ftp://127.0.0.1/"], "'--wechat-sim'"),
        (["--router-pid", "-3", *TARGET], "'--router-pid'"),
        (["--router-pid", "0", *TARGET], "'--router-pid'"),
        (["--redis-url", "foo", *TARGET], "'--redis-url'"),
        (["--redis-url", "unix:///run/redis.sock", *TARGET], "'--redis-url'"),
        (["--api-key", "  ", *TARGET], "must not be empty"),
        (["--routing", "/nonexistent/routing.yaml", *TARGET], "'--routing'"),
        (["--redis-url", "redis://127.0.0.1:6379/0"], "only with --target"),
        (["--api-key", "sk_test_x", "--routing", "/etc/hostname"], "--api-key, --routing"),
        (["--wechat-sim", "http://127.0.0.1:8091"], "only with --target"),
    ],
)
def test_bench_refuses_nonsense(args: list[str], fragment: str) -> None:
    refused_in_process(["bench", *args], fragment)


BAD_IDS = ["", "mch_", "mch_x", "pay_0123456789abcdef", "mch_0123456789\n", "mch_01234567/../x"]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    "verb",
    [
        ["merchants", "update", "{}", "--no-notify-url"],
        ["merchants", "rotate-key", "{}"],
        ["merchants", "rotate-webhook-secret", "{}"],
        ["merchants", "webhook-endpoints", "{}"],
        ["merchants", "enable-endpoint", "{}", "we_0123456789"],
    ],
)
def test_merchant_ids_are_checked_before_any_store_is_opened(verb: list[str], bad: str) -> None:
    # No PAYROUTER_REDIS_URL: a command that got past its arguments would complain of that.
    refused_in_process([bad if arg == "{}" else arg for arg in verb], "is not a merchant id")


def test_a_bad_merchant_id_as_a_process() -> None:
    result = payrouter("merchants", "rotate-key", "mch_x")
    assert result.returncode == 2, result.stderr
    assert "'mch_x' is not a merchant id" in result.stderr
    assert "PAYROUTER_REDIS_URL" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["merchants", "enable-endpoint", "mch_0123456789", " "], "ENDPOINT"),
        (["sim", "--host", ""], "'--host'"),
        (["sim", "--time-factor", "nan"], "not a finite number"),
        (["routes", "explain", "--method", "qr", "--merchant", ""], "'--merchant'"),
        (["routes", "explain", "--method", "qr", "--payment-id", " "], "'--payment-id'"),
        (["routes", "explain", "--method", "qr", "--channel", ""], "'--channel'"),
    ],
)
def test_blank_strings_and_nan_are_refused(args: list[str], fragment: str) -> None:
    refused_in_process(args, fragment)
