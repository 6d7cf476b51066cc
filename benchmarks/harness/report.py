"""The benchmark report as aligned plain text (the same numbers as `--json`)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

SERVER_PARTY = {"floor-wechat": "floor", "direct-wechat": None}
"""Whose CPU the table shows for a scenario: the router's, unless named here."""
KEY_WIDTH = 64
"""Example keys are cut to this many characters in the text (not in `--json`)."""


def _num(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _pct(value: object) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell; the first left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _scenario_rows(scenarios: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for name, s in scenarios.items():
        lat = s.get("latency_ms") or {}
        cpu = s.get("cpu_ms_per_op") or {}
        party = SERVER_PARTY.get(name, "router")
        redis = s.get("redis_per_op") or {}
        rows.append(
            [
                name,
                str(s.get("processes", "")),
                _num(s["count"], 0),
                _num(s["errors"], 0),
                _num(s["throughput_rps"]),
                _num(lat.get("p50"), 2),
                _num(lat.get("p95"), 2),
                _num(lat.get("p99"), 2),
                _num(cpu.get(party) if party else None, 2),
                _num(sum(v for v in cpu.values() if v is not None) if cpu else None, 2),
                f"{_pct(s.get('machine_busy'))}/{_pct(s.get('host_busy'))}",
                _num(redis.get("commands_per_item"), 1),
            ]
        )
    return rows


def _cpu_lines(report: Mapping[str, Any]) -> list[str]:
    cpu = report.get("cpu")
    if not cpu:
        return ["router CPU per payment: not measured (see notes)"]
    out = [
        f"router CPU per payment ({cpu['phase']}, {cpu['router_processes']} process): "
        f"{_num(cpu['router_ms_per_payment'], 3)} ms",
        f"floor CPU per payment (floor-wechat: parse, sign, send, verify, one HSET): "
        f"{_num(cpu['floor_ms_per_payment'], 3)} ms",
    ]
    ratio = cpu.get("ratio_router_to_floor")
    out.append(f"==> router / floor CPU per payment: {_num(ratio, 2)}x")
    by = {
        name: s.get("cpu_ms_per_op") or {}
        for name, s in report["scenarios"].items()
        if name in ("create-qr-wechat", "floor-wechat", "direct-wechat")
    }
    parties = sorted({p for cpu_of in by.values() for p in cpu_of})
    if by and parties:
        out += ["", "CPU ms per operation, by process:"]
        rows = [[name, *(_num(c.get(p), 3) for p in parties)] for name, c in by.items()]
        out += ["  " + line for line in table(["scenario", *parties], rows)]
    return out


def _redis_lines(report: Mapping[str, Any]) -> list[str]:
    redis = report.get("redis")
    if not redis:
        return ["Redis per payment: not measured (see notes)"]
    out = [
        f"Redis per payment ({redis['phase']}, {redis['payments']} payments): "
        f"{_num(redis['commands_per_payment'], 2)} commands, "
        f"{_num(redis['round_trips_per_payment'], 2)} round trips "
        "(total_reads_processed)",
    ]
    if redis.get("cpu_ms_per_payment") is not None:
        out.append(
            f"Redis CPU (primaries, /proc): {_num(redis['cpu_ms_per_payment'], 3)} ms per "
            f"payment, {_num(redis.get('cpu_us_per_command'), 1)} µs per command"
        )
    # Commands below 0.005 a payment (background loops, connection handshakes) show as 0.00.
    shown = {name: calls for name, calls in redis["by_command"].items() if calls >= 0.005}
    rows = [[name, _num(calls, 2)] for name, calls in shown.items()]
    out += ["  " + line for line in table(["command", "calls/payment"], rows)]
    floor = redis.get("floor")
    if floor:
        out.append(
            f"floor for comparison: {_num(floor['commands_per_item'], 2)} commands, "
            f"{_num(floor['round_trips_per_item'], 2)} round trips per payment"
        )
    idle = redis.get("idle_background")
    if idle:
        out.append(
            f"idle background (routers' own loops, included above): "
            f"{_num(idle['commands_per_s'], 1)} commands/s, "
            f"{_num(idle['round_trips_per_s'], 1)} round trips/s"
        )
    out.append("(commands run inside Lua scripts count under their own names too)")
    return out


def _spread_lines(report: Mapping[str, Any]) -> list[str]:
    spread = report.get("spread")
    if not spread:
        return []
    nodes = spread["nodes"]
    out = [
        f"where commands land (spread-wechat, {spread['payments']} creates by 16 merchants, one "
        f"sending half; MONITOR on {len(nodes)} primar{'ies' if len(nodes) != 1 else 'y'}, "
        f"{spread['topology']}):",
        f"  {spread['commands']:,} commands ({_num(spread['commands_per_payment'], 2)} per "
        f"payment, {spread['from_lua']:,} run by Lua scripts, {spread['unkeyed']:,} with no key"
        f"), {spread['slots_used']} slots used",
    ]
    busiest = spread.get("busiest_slot")
    if busiest:
        out.append(
            f"==> busiest slot {busiest['slot']} ({busiest['example_key']}): "
            f"{_pct1(busiest['share'])} of commands, {_num(busiest['x_fair'], 2)}x its fair "
            f"share ({_pct1(spread['fair_slot_share'])} = 1/64: payments spread over 64 slots)"
        )
        rows = [
            [_short(s["example_key"]), str(s["slot"]), _pct1(s["share"]), _num(s["x_fair"], 2)]
            for s in spread["top_slots"]
        ]
        out += ["  " + line for line in table(["example key", "slot", "share", "x fair"], rows)]
    if spread.get("busiest_node"):
        shares = ", ".join(f"{node} {_pct1(share)}" for node, share in nodes.items())
        out.append(
            f"==> busiest node {spread['busiest_node']}: {_pct1(spread['busiest_node_share'])} "
            f"of commands (fair {_pct1(spread['fair_node_share'])}); {shares}"
        )
    return out


def _short(key: str, width: int = KEY_WIDTH) -> str:
    return key if len(key) <= width else key[: width - 1] + "…"


def _pct1(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"


def _scale_lines(report: Mapping[str, Any]) -> list[str]:
    scale = report.get("scale_out")
    if not scale:
        return []
    parts = [
        f"{p} process{'es' if p != '1' else ''} {_num(v['throughput_rps'])} req/s "
        f"(router CPU {_num(v['router_cpu_ms_per_payment'], 2)} ms/payment, "
        f"machine {_pct(v.get('machine_busy'))} busy)"
        for p, v in scale["by_processes"].items()
    ]
    out = [
        f"scale-out ({scale['scenario']}):",
        *(f"  {part}" for part in parts),
        f"==> throughput ratio {scale['ratio_of']}: {_num(scale['ratio'], 2)}x",
    ]
    saturated = scale.get("machine_saturated_at")
    if saturated:
        out.append(
            f"(the benchmark's processes kept the machine's cores busy at "
            f"{', '.join(map(str, saturated))} process(es): there the ratio measures the "
            "machine, not the router)"
        )
    return out


def render(report: Mapping[str, Any]) -> str:
    m = report["machine"]
    s = report["settings"]
    load = (
        f"fixed rate {s['rate_per_s']}/s"
        if s["mode"] == "rate"
        else f"concurrency {s['concurrency']}"
    )
    bound = f"{s['count']} ops" if s["count"] is not None else f"{s['duration_s']} s"
    lines = [
        f"payrouter bench: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}, "
        f"redis-server {m['redis_server']} ({s.get('redis', 'single')})",
        f"command: {shlex.join(report['command'])}",
        f"load: {load}, {bound} per scenario, warm-up {s['warmup']} ops; "
        f"took {report['elapsed_s']} s",
        "",
    ]
    headers = ["scenario", "procs", "ok", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms"]
    headers += ["CPU ms/op", "all CPU ms/op", "busy/host", "redis cmds/op"]
    lines += table(headers, _scenario_rows(report["scenarios"]))
    lines.append(
        "(CPU ms/op: the router's, the floor's for floor-wechat; all: every process measured;"
        "\n busy: their CPU over the phase as a share of all cores; host: the whole machine's"
        " busy share from /proc/stat, anything else running included)"
    )
    added = report.get("router_added_latency_ms")
    if added:
        lines += [
            "",
            "router-added latency (create-qr-wechat minus direct-wechat): "
            + ", ".join(f"{k} {_num(v, 2)} ms" for k, v in added.items()),
        ]
    lines += ["", *_cpu_lines(report), "", *_redis_lines(report)]
    spread = _spread_lines(report)
    if spread:
        lines += ["", *spread]
    scale = _scale_lines(report)
    if scale:
        lines += ["", *scale]
    errors = {n: sc["error_samples"] for n, sc in report["scenarios"].items() if sc["errors"]}
    for name, samples in errors.items():
        lines += ["", f"{name} errors, first ones:", *(f"  {e}" for e in samples)]
    for note in report.get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines)
