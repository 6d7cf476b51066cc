"""Several sandbox accounts per simulator, each with faults of its own: on every wallet's
simulator, over HTTP on loopback, and through the router with two WeChat Pay accounts of one
simulator."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from channels.credentials import CredentialsRef
from channels.registry import REGISTRY
from channels.sim.kit import SimulatorSettings
from channels.wechat.sandbox import ensure_sandbox
from channels.wechat.sim.app import build_app as build_wechat
from tests.conftest import loopback_socket, serve, url_of
from tests.e2e.conftest import Simulator, account_yaml, start_router

ID_FIELDS = {"wechat": "mchid", "alipay": "app_id", "unionpay": "mer_id"}


@pytest.mark.parametrize("wallet", sorted(REGISTRY))
async def test_a_simulator_holds_several_accounts(
    wallet: str, tmp_path: Path, serving: list[web.AppRunner], http: aiohttp.ClientSession
) -> None:
    settings = SimulatorSettings(sandbox_dir=tmp_path, seed=3, time_factor=0.001, accounts=3)
    sock = loopback_socket()
    serving.append(await serve(REGISTRY[wallet].build_simulator(settings), sock))
    async with http.get(url_of(sock) + "/sim/accounts") as resp:
        bundles = (await resp.json())["accounts"]
    ids = [bundle[ID_FIELDS[wallet]] for bundle in bundles]
    assert len(set(ids)) == 3
    assert ids[1] == str(int(ids[0]) + 1)
    # Every bundle is a valid credentials file for a routing account.
    for bundle_id in ids:
        path = next((tmp_path / wallet).glob(f"{bundle_id}.json"))
        REGISTRY[wallet].load_credentials(CredentialsRef(file=str(path)), tmp_path)


async def test_an_outage_of_one_account_fails_over_to_another_on_the_same_simulator(
    redis_url: str, tmp_path: Path, serving: list[web.AppRunner], http: aiohttp.ClientSession
) -> None:
    sandbox = tmp_path / "sandbox"
    sock = loopback_socket()
    settings = SimulatorSettings(sandbox_dir=sandbox, seed=5, time_factor=0.001, accounts=2)
    serving.append(await serve(build_wechat(settings), sock))
    one = Simulator(url_of(sock), ensure_sandbox(sandbox, 0))
    two = Simulator(url_of(sock), ensure_sandbox(sandbox, 1))
    text = (
        "version: 1\naccounts:\n"
        + account_yaml("wechat_one", one, 1.0)
        + account_yaml("wechat_two", two, 1.0)
        + "rules:\n  - name: both\n    accounts: [wechat_one, wechat_two]\n"
    )
    router = await start_router(redis_url, one, tmp_path, serving, http, config_text=text)
    faults = f"{one.url}/sim/faults?account={one.sandbox.mchid}"
    async with http.put(faults, json={"outage": True}) as resp:
        assert resp.status == 200
    status, body = await router.create()
    assert status == 201, body
    attempts = [(a["channel"], a["outcome"]) for a in body["routing"]["attempts"]]
    assert attempts == [("wechat_one", "unavailable"), ("wechat_two", "created")]


async def test_payrouter_sim_accounts_option(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """`payrouter sim --accounts 2` as a real process, on a loopback address of its own."""
    host = next(h for h in (f"127.0.0.{n}" for n in range(120, 160)) if _free(h))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router",
        "sim",
        "--accounts",
        "2",
        "--host",
        host,
        "--sandbox-dir",
        str(tmp_path / "sb"),
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    try:
        assert proc.stderr is not None
        ready = [await asyncio.wait_for(proc.stderr.readline(), 30) for _ in range(3)]
        assert all(b"simulator on" in line for line in ready), ready
        for port, field in ((8091, "mchid"), (8092, "app_id"), (8093, "mer_id")):
            async with http.get(f"http://{host}:{port}/sim/accounts") as resp:
                ids = [bundle[field] for bundle in (await resp.json())["accounts"]]
            assert len(ids) == 2 and ids[1] == str(int(ids[0]) + 1)
    finally:
        proc.terminate()
        await proc.wait()


def _free(host: str) -> bool:
    """Whether the simulators' ports are free on `host`."""
    for port in (8091, 8092, 8093):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True
