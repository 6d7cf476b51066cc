"""`payrouter dev` as a newcomer runs it: a real process, its printed key, its printed curl."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import eventually

ROOT = Path(__file__).parents[2]
PORTS = (8080, 8091)


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(90)
async def test_dev_prints_a_key_and_a_request_that_works() -> None:
    if any(_busy(port) for port in PORTS):
        pytest.skip("ports 8080/8091 are taken by something else on this machine")
    exe = Path(sys.executable).with_name("payrouter")
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        "dev",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "PAYROUTER_REDIS_URL": ""},
    )
    try:
        assert proc.stdout is not None
        printed = ""
        while "then pay it" not in printed:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            assert line, "payrouter dev exited early"
            printed += line.decode()
        secret = re.search(r"secret\s+(sk_test_\S+)", printed)
        assert secret is not None
        curl = printed[printed.index("curl -s") : printed.index("then pay it")]
        args = shlex.split(curl.replace("\\\n", " "))
        url = args[2]
        headers = dict(
            h.split(": ", 1) for h in (args[i + 1] for i, a in enumerate(args) if a == "-H")
        )
        body = args[args.index("-d") + 1]
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=body, headers=headers) as resp:
                created = await resp.json()
                assert resp.status == 201, created
            code = created["action"]["qr_code"]
            async with http.post("http://127.0.0.1:8091/sim/buyer/pay", json={"code": code}) as r:
                assert r.status == 200

            async def paid() -> str | None:
                async with http.get(f"{url}/{created['id']}", headers=headers) as resp:
                    status: str = (await resp.json())["status"]
                    return status if status == "succeeded" else None

            assert await eventually(paid) == "succeeded"
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        returncode = await asyncio.wait_for(proc.wait(), timeout=20)
    assert returncode == 0
