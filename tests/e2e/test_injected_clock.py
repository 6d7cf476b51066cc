"""Decisions follow the router's injected clock, adapters included: once the create deadline
has passed, failover tries no further candidate, and adapters sign with the router's time.
Time moves by `ShiftedClock.advance`, at the moment a simulator answers; nothing sleeps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from channels.sim.kit import SimulatorSettings
from channels.wechat.sandbox import ensure_sandbox
from channels.wechat.sim.app import build_app as build_simulator
from tests.conftest import loopback_socket, serve, url_of
from tests.e2e.conftest import Router, Simulator, account_yaml, sim_json, start_router

DEADLINE_S = 5.0


async def start_watched_simulator(
    sandbox_dir: Path, serving: list[web.AppRunner], on_answer: Callable[[], None]
) -> Simulator:
    """A WeChat Pay simulator that calls `on_answer` as it answers each request: after the
    router has sent it and before the router has read the answer."""
    sock = loopback_socket()
    url = url_of(sock)
    settings = SimulatorSettings(
        sandbox_dir=sandbox_dir, seed=7, time_factor=0.001, public_base_url=url
    )
    app = build_simulator(settings)

    async def answering(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/v3/pay/transactions/"):
            on_answer()

    app.on_response_prepare.append(answering)
    serving.append(await serve(app, sock))
    return Simulator(url=url, sandbox=ensure_sandbox(sandbox_dir))


async def test_failover_stops_at_the_create_deadline_of_the_injected_clock(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    jump = [0.0]
    routers: list[Router] = []

    def while_main_answers() -> None:
        routers[0].clock.advance(jump[0])

    main = await start_watched_simulator(tmp_path / "sandbox-main", serving, while_main_answers)
    config = (
        "version: 1\naccounts:\n"
        + account_yaml("wechat_main", main)
        + account_yaml("wechat_backup", simulator)
        + "rules:\n  - name: prefer-main\n    accounts: [wechat_main, wechat_backup]\n"
    )
    router = await start_router(
        redis_url,
        simulator,
        tmp_path,
        serving,
        http,
        config_text=config,
        overrides={"create_deadline_s": DEADLINE_S},
    )
    routers.append(router)
    await sim_json(http, main, "PUT", "/sim/faults", {"outage": True})

    # Within the deadline the failed main account is followed by the backup.
    status, body = await router.create()
    assert status == 201, body
    assert [a["channel"] for a in body["routing"]["attempts"]] == ["wechat_main", "wechat_backup"]

    # The same failure, but the injected clock passes the deadline while main answers.
    jump[0] = DEADLINE_S + 0.1
    status, body = await router.create()
    assert status == 503, body
    failed = await router.payment(body["error"]["payment_id"])
    assert failed["status"] == "failed"
    assert [a["channel"] for a in failed["routing"]["attempts"]] == ["wechat_main"]


async def test_adapters_sign_with_the_routers_clock(router: Router) -> None:
    status, body = await router.create()
    assert status == 201, body
    # Ten minutes ahead, the router's WeChat Pay signature falls outside the simulator's
    # 300 s window: the adapter signed with the router's clock, not the system's.
    router.clock.advance(600)
    status, body = await router.create()
    assert status == 402, body
    failed = await router.payment(body["error"]["payment_id"])
    assert failed["failure"]["code"] == "SIGN_ERROR"
