"""`payrouter bench --redis` and `--spread-count` refuse what cannot work before anything starts."""

from __future__ import annotations

import pytest

from tests.router.test_cli_options import TARGET, refused_in_process


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--redis", "sentinel"], "'--redis'"),
        (["--redis", "cluster", *TARGET], "--redis: only without --target"),
        (["--spread-count", "0"], "'--spread-count'"),
        (["--redis-url", "redis+cluster://127.0.0.1:7000,127.0.0.1:x", *TARGET], "'--redis-url'"),
        (["--redis-url", "redis+cluster://127.0.0.1:7000,:7001", *TARGET], "'--redis-url'"),
        (["--redis-url", "redis+sentinel://127.0.0.1:26379/p", *TARGET], "'--redis-url'"),
        (["--redis-url", "redis://127.0.0.1:0/0", *TARGET], "'--redis-url'"),
    ],
)
def test_bench_refuses(args: list[str], fragment: str) -> None:
    refused_in_process(["bench", *args], fragment)
