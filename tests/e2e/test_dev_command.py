"""`payrouter dev` as a newcomer runs it: a real process, its printed key, its printed curl, and
the README's walk-through pasted into a shell as it stands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.store.connect import redis_client
from tests.e2e.conftest import eventually

ROOT = Path(__file__).parents[2]
PORTS = (8080, 8091, 8092, 8093)
BIN = Path(sys.executable).parent
PATH = f"{BIN}:/usr/bin:/bin"
"""The venv first: the walk-through calls `python3`."""


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.asynccontextmanager
async def running_dev(env: dict[str, str]) -> AsyncIterator[str]:
    """`payrouter dev` from the checkout, yielding what it printed once ready."""
    if any(_busy(port) for port in PORTS):
        pytest.skip("ports 8080-8093 are taken by something else on this machine")
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "payrouter"),
        "dev",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": PATH} | env,
    )
    try:
        assert proc.stdout is not None
        printed = ""
        while "then pay it" not in printed:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            assert line, "payrouter dev exited early"
            printed += line.decode()
        yield printed
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        returncode = await asyncio.wait_for(proc.wait(), timeout=20)
    assert returncode == 0


def secret_of(printed: str) -> str:
    found = re.search(r"^  secret\s+(sk_test_\S+)$", printed, re.MULTILINE)
    assert found is not None, printed
    return found.group(1)


@pytest.mark.timeout(90)
async def test_dev_prints_a_key_and_a_request_that_works() -> None:
    async with running_dev({"PAYROUTER_REDIS_URL": ""}) as printed:
        assert "embedded store" in printed
        assert re.search(r"webhook secret\s+whsec_\S+", printed)
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


@pytest.mark.timeout(90)
async def test_dev_against_redis_keeps_one_sandbox_merchant(redis_url: str) -> None:
    seen = []
    for _ in range(2):
        async with running_dev({"PAYROUTER_REDIS_URL": redis_url}) as printed:
            assert "embedded" not in printed
            assert f"Redis at {redis_url}" in printed
            webhook = re.search(r"webhook secret\s+(whsec_\S+)", printed)
            assert webhook is not None
            seen.append((secret_of(printed), webhook.group(1)))
    assert seen[0] == seen[1]
    client = redis_client(redis_url)
    try:
        assert len(await client.smembers("pr:merchants")) == 1
    finally:
        await client.aclose()


def walkthrough() -> str:
    """The first shell block after the README's walk-through heading, as a reader copies it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Walk-through with curl") :]
    return section[section.index("```sh\n") + 6 : section.index("\n```", section.index("```sh"))]


def answers(output: str) -> list[dict[str, Any]]:
    found = []
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                found.append(value)
    return found


@pytest.mark.timeout(150)
async def test_readme_walkthrough_works_on_every_wallet() -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    block = walkthrough()
    assert block.count("SK=sk_test_...") == 1
    assert block.count("WALLET=wechat ") == 1
    async with running_dev({"PAYROUTER_REDIS_URL": ""}) as printed:
        secret = secret_of(printed)
        for wallet in ("wechat", "alipay", "unionpay"):
            script = block.replace("SK=sk_test_...", f"SK={secret}").replace(
                "WALLET=wechat ", f"WALLET={wallet} "
            )
            proc = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                script,
                env={"PATH": PATH},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            assert proc.returncode == 0, (wallet, err.decode())
            assert not err, (wallet, err.decode())
            replies = answers(out.decode())
            assert not [r for r in replies if "error" in r], (wallet, out.decode())
            payments = [r for r in replies if r.get("object") == "payment"]
            assert payments[0]["wallet"] == wallet
            assert payments[0]["status"] == "pending"
            assert payments[1]["status"] == "succeeded"
            assert payments[-1]["status"] == "closed"
            refunds = [r for r in replies if r.get("object") == "refund"]
            assert sorted(r["amount"] for r in refunds) == [500, 1499]
            await refunded(secret, payments[0]["id"])


async def refunded(secret: str, pay_id: str) -> None:
    """The walk-through's refunds settle: the whole payment is refunded."""
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http:

        async def done() -> bool | None:
            async with http.get(
                f"http://127.0.0.1:8080/v1/payments/{pay_id}", headers=headers
            ) as resp:
                return True if (await resp.json())["amount_refunded"] == 1999 else None

        await eventually(done, timeout=20)
