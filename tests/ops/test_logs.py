"""`payrouter serve` logs one JSON object per line with the request's fields, follows a W3C
traceparent into its channel calls' lines, and never writes a secret (a real process, a real
simulator and Redis)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from router import logs
from router.clock import Clock
from router.store import open_store
from tests.conftest import loopback_socket
from tests.e2e.conftest import Simulator, eventually, routing_yaml

ADMIN_TOKEN = "adm-secret-token-0123456789"
SECRET_KEY = base64.b64encode(b"k" * 32).decode()
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def new_merchant(redis_url: str) -> tuple[str, str, list[str]]:
    """A merchant made in the store sealed under `SECRET_KEY`: id, API secret, webhook secrets."""
    store = await open_store(redis_url, Clock(), base64.b64decode(SECRET_KEY))
    try:
        merchant, issued = await store.merchants.create("Log shop")
        return merchant.id, issued.secret, await store.merchants.webhook_secrets(merchant.id)
    finally:
        await store.close()


async def serve(env: dict[str, str], log_file: Path) -> tuple[asyncio.subprocess.Process, str]:
    with loopback_socket() as probe:
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).with_name("payrouter")
    with log_file.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            str(exe), "serve", env=env | {"PAYROUTER_PORT": str(port)}, stderr=sink
        )

    async def up() -> bool | None:
        with contextlib.suppress(aiohttp.ClientError):
            async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as resp:
                return True if resp.status == 200 else None
        return None

    await eventually(up, timeout=30)
    return proc, url


@pytest.mark.e2e
async def test_serve_logs_json_lines_with_trace_and_no_secret(
    redis_url: str,
    postgres_migrated_url: str,
    simulator: Simulator,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    config = tmp_path / "routing.yaml"
    config.write_text(routing_yaml(simulator))
    mch, secret, webhook_secrets = await new_merchant(redis_url)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PAYROUTER_REDIS_URL": redis_url,
        "PAYROUTER_DATABASE_URL": postgres_migrated_url,
        "PAYROUTER_ROUTING": str(config),
        "PAYROUTER_ADMIN_TOKEN": ADMIN_TOKEN,
        "PAYROUTER_SECRET_KEY": SECRET_KEY,
    }
    log_file = tmp_path / "serve.log"
    proc, url = await serve(env, log_file)
    try:
        auth = {"Authorization": f"Bearer {secret}"}
        body = {"amount": 1999, "description": "Demo", "method": "qr", "merchant_order_id": "L1"}
        headers = auth | {"traceparent": TRACEPARENT, "X-Request-Id": "req_logs_test_1"}
        async with http.post(f"{url}/v1/payments", json=body, headers=headers) as resp:
            assert resp.status == 201
            payment = (await resp.json())["id"]
            answered = resp.headers["traceparent"]
        assert answered.startswith(f"00-{TRACE_ID}-") and answered.endswith("-01")
        assert answered != TRACEPARENT  # our own span as the parent
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with http.get(f"{url}/admin/channels", headers=admin) as resp:
            assert resp.status == 200
        # Secrets where they do not belong: a wrong key and a webhook secret in a query.
        async with http.get(
            f"{url}/v1/payments?x={webhook_secrets[0]}",
            headers={"Authorization": "Bearer sk_live_" + "z" * 24},
        ) as resp:
            assert resp.status == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=20)
    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one object
    assert all({"time", "level", "message", "logger"} <= line.keys() for line in lines)
    for needle in (secret, ADMIN_TOKEN, SECRET_KEY, *webhook_secrets, "sk_live_zzzz"):
        assert needle not in text
    traced = [line for line in lines if line.get("trace_id") == TRACE_ID]
    call = next(line for line in traced if line["message"].startswith("channel call"))
    assert (
        call
        | {
            "request_id": "req_logs_test_1",
            "merchant": mch,
            "payment": payment,
            "account": "wechat_main",
            "operation": "create",
            "outcome": "ok",
        }
        == call
    )
    assert isinstance(call["duration_ms"], float)
    served = next(line for line in traced if line.get("route") == "/v1/payments")
    assert served | {"status": 201, "method": "POST", "level": "info", "payment": payment} == served


def test_console_format_is_readable_and_exceptions_are_redacted() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("console", logging.INFO, stream)
    try:
        log = logging.getLogger("payrouter.test")
        try:
            raise ValueError("token Bearer sk_test_abcdefghijkl")
        except ValueError:
            log.exception("failed for %s", "sk_test_secretsecret")
    finally:
        root.handlers[:], root.level = saved
    text = stream.getvalue()
    assert "failed for sk_test_[REDACTED]" in text and "ValueError" in text
    assert "abcdefghijkl" not in text and "secretsecret" not in text
    assert not text.lstrip().startswith("{")


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (TRACEPARENT, True),
        (TRACEPARENT.upper(), True),
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", False),
        ("01-" + TRACE_ID + "-00f067aa0ba902b7-01", False),
        ("garbage", False),
        (None, False),
    ],
)
def test_traceparent_is_taken_only_when_valid(header: str | None, kept: bool) -> None:
    trace = logs.TraceContext.from_header(header)
    assert (trace.trace_id == TRACE_ID) is kept
    assert logs.TRACEPARENT.fullmatch(trace.header)
