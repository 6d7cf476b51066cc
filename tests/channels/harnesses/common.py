"""What the three contract-suite harnesses share: a per-process sandbox copy, the buyer and
fault controls of a simulator, and the start-serve-build-stop sequence around them.

Only the wallet-specific parts (which sandbox files, how a buyer reads an action, codes and
payer ids) stay in each harness module.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from channels.base import Action, Channel
from channels.credentials import AccountBase
from channels.sim.kit import SimulatorSettings
from tests.channels.conftest import TIME_FACTOR, serve
from tests.channels.harness import Harness

_Account = TypeVar("_Account", bound=AccountBase)


def snapshot_sandbox(
    ensure: Callable[[Path], object], files: Callable[[Path], Iterable[Path]]
) -> dict[str, str]:
    """Generate a sandbox in a scratch folder and return `files` of it by relative name.

    Callers cache the result per process: RSA key generation is most of a simulator's
    start-up time, so each harness copies one generated sandbox instead.
    """
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        ensure(root)
        return {str(path.relative_to(root)): path.read_text() for path in files(root)}


def write_sandbox(sandbox_dir: Path, files: Mapping[str, str]) -> Path:
    """Write a snapshot under `sandbox_dir` (mode 0600, like the real one)."""
    for name, text in files.items():
        path = sandbox_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    return sandbox_dir


async def check(response: aiohttp.ClientResponse, what: str) -> None:
    """Fail the test with the simulator's answer unless it is a 200."""
    if response.status != 200:
        raise AssertionError(f"{what}: {response.status} {await response.text()}")


@asynccontextmanager
async def channel_harness(
    tmp_path: Path,
    session: aiohttp.ClientSession,
    *,
    name: str,
    sandbox_dir: Path,
    credentials_file: Path,
    seed: int,
    build_app: Callable[[SimulatorSettings], web.Application],
    account: type[_Account],
    build: Callable[[str, _Account, Path, aiohttp.ClientSession], Channel],
    buyer_code: Callable[[Action], str | Awaitable[str]],
    auth_code: str,
    payer_id: str | None,
) -> AsyncIterator[Harness]:
    """Serve the simulator on loopback and yield `<name>_main` built against it.

    `buyer_code` turns an action into the code `/sim/buyer/pay|decline` takes; it may be a
    coroutine function when the buyer has to talk to the simulator first.
    """
    settings = SimulatorSettings(sandbox_dir=sandbox_dir, seed=seed, time_factor=TIME_FACTOR)
    served = await serve(build_app(settings))
    base = served.base_url

    async def buyer(what: str, action: Action) -> None:
        code = buyer_code(action)
        if inspect.isawaitable(code):
            code = await code
        async with session.post(f"{base}/sim/buyer/{what}", json={"code": code}) as response:
            await check(response, f"/sim/buyer/{what}")

    async def pay(action: Action) -> None:
        await buyer("pay", action)

    async def decline(action: Action) -> None:
        await buyer("decline", action)

    async def set_faults(faults: dict[str, Any]) -> None:
        async with session.put(f"{base}/sim/faults", json=faults) as response:
            await check(response, "/sim/faults")

    try:
        config = account.model_validate(
            {
                "type": name,
                "base_url": base,
                "credentials": {"file": str(credentials_file)},
                # Well under the contract suite's injected hangs, so they end fast.
                "timeouts": {"connect": 1, "total": 1},
            }
        )
        yield Harness(
            name=name,
            channel=build(f"{name}_main", config, tmp_path, session),
            sim_url=base,
            pay=pay,
            decline=decline,
            set_faults=set_faults,
            auth_code=auth_code,
            payer_id=payer_id,
        )
    finally:
        await served.runner.cleanup()
