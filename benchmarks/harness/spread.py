"""Where Redis commands land: slots and nodes, from `MONITOR` lines. Pure logic, no I/O.

Redis 7.0 keeps no per-slot counters, so the harness watches `MONITOR` on every primary
during a short dedicated measurement and tallies each command line here: its first key's
slot (`redis.crc.key_slot`, the slot a cluster client sends it to), and the node it was seen
on. Commands that Lua scripts run appear as lines of their own (`[0 lua]`) and count in the
slot of their key too, the way `INFO commandstats` counts them under their own names.

A line reads `+1700000000.123456 [0 127.0.0.1:50514] "evalsha" "<sha>" "2" "k1" "k2" "a"`:
every argument quoted, with Redis's escapes (`\\"`, `\\\\`, `\\n`, `\\xHH`, ...).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from redis.crc import key_slot

_LINE = re.compile(r"^\+?(?P<time>\d+(?:\.\d+)?) \[(?P<db>\d+) (?P<client>[^\]]*)\] (?P<args>.*)$")
_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b", '"': b'"', "\\": b"\\"}

SCRIPT_COMMANDS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
"""`name script numkeys key... arg...`: the keys follow numkeys."""
ALL_KEYS = frozenset({"del", "unlink", "exists", "mget", "touch", "watch", "sinter", "sunion"})
"""Every argument is a key."""
STREAM_READS = frozenset({"xread", "xreadgroup"})
"""`... STREAMS key... id...`: the keys are the first half after STREAMS."""
NO_KEYS = frozenset(
    {
        "auth",
        "client",
        "cluster",
        "command",
        "config",
        "dbsize",
        "discard",
        "echo",
        "exec",
        "hello",
        "info",
        "monitor",
        "multi",
        "ping",
        "quit",
        "readonly",
        "readwrite",
        "reset",
        "script",
        "select",
        "time",
        "unwatch",
        "wait",
    }
)
"""Commands that name no key: they land on the node they were sent to, in no slot."""
OWN_COMMANDS = frozenset({"info", "monitor", "echo"})
"""What the harness itself sends while it watches: left out of every tally."""
TOP_SLOTS = 5


@dataclass(frozen=True)
class MonitorCommand:
    """One command as `MONITOR` showed it."""

    name: str
    """Lower case: `evalsha`, `hset`, `client|...` is just `client`."""
    args: tuple[bytes, ...]
    """The arguments after the name, unescaped."""
    from_lua: bool
    """Run by a Lua script (`[0 lua]`) rather than sent by a client."""


def unescape(text: str) -> bytes:
    """The bytes of one quoted `MONITOR` argument (Redis's `sdscatrepr` undone)."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\" or i + 1 == len(text):
            out += char.encode("latin-1", errors="replace")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "x" and _is_hex(text[i + 2 : i + 4]):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out += _ESCAPES.get(nxt, nxt.encode("latin-1", errors="replace"))
            i += 2
    return bytes(out)


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)


def parse_monitor_line(line: str) -> MonitorCommand | None:
    """The command on one `MONITOR` line; `None` for anything else (`+OK`, a blank line)."""
    match = _LINE.match(line.rstrip("\r\n"))
    if match is None:
        return None
    args = [unescape(arg) for arg in _ARG.findall(match["args"])]
    if not args:
        return None
    return MonitorCommand(
        name=args[0].decode("latin-1").lower(),
        args=tuple(args[1:]),
        from_lua=match["client"] == "lua",
    )


def keys_of(command: MonitorCommand) -> tuple[bytes, ...]:
    """The keys a command names: all of them where they are easy to tell (scripts, streams,
    multi-key commands), else the first argument; none for commands that take no key."""
    name, args = command.name, command.args
    if name in NO_KEYS or not args:
        return ()
    if name in SCRIPT_COMMANDS:
        try:
            count = int(args[1]) if len(args) > 1 else 0
        except ValueError:
            return ()
        return args[2 : 2 + count]
    if name in STREAM_READS:
        upper = [arg.upper() for arg in args]
        if b"STREAMS" not in upper:
            return ()
        rest = args[upper.index(b"STREAMS") + 1 :]
        return rest[: len(rest) // 2]
    if name in ALL_KEYS:
        return args
    if name in ("mset", "msetnx"):
        return args[::2]
    return args[:1]


def slot_of(command: MonitorCommand) -> int | None:
    """The one slot a command's keys hash to; `None` for no key, or keys in several slots
    (only possible on a single server, e.g. one `XREADGROUP` over every outbox)."""
    slots = {key_slot(key) for key in keys_of(command)}
    return slots.pop() if len(slots) == 1 else None


@dataclass
class SpreadTally:
    """Commands counted per slot and per node over one measurement."""

    slots: Counter[int] = field(default_factory=Counter)
    nodes: Counter[str] = field(default_factory=Counter)
    examples: dict[int, str] = field(default_factory=dict)
    """An example key of each slot (the first one seen)."""
    unkeyed: int = 0
    multi_slot: int = 0
    from_lua: int = 0

    @property
    def total(self) -> int:
        return sum(self.nodes.values())

    def add(self, node: str, command: MonitorCommand) -> None:
        """Count one command seen on `node` (the harness's own commands are skipped)."""
        if command.name in OWN_COMMANDS:
            return
        self.nodes[node] += 1
        self.from_lua += command.from_lua
        keys = keys_of(command)
        if not keys:
            self.unkeyed += 1
            return
        slot = slot_of(command)
        if slot is None:
            self.multi_slot += 1
            return
        self.slots[slot] += 1
        self.examples.setdefault(slot, keys[0].decode("utf-8", errors="replace"))

    def add_lines(self, node: str, lines: Iterable[str]) -> None:
        for line in lines:
            command = parse_monitor_line(line)
            if command is not None:
                self.add(node, command)

    def summary(self, partitions: int, items: int, nodes: Sequence[str]) -> dict[str, object]:
        """The report's `spread` numbers: shares are of every command counted (keyed or not);
        the fair share of a slot is 1/`partitions` (the work of payments is spread over that
        many slots), of a node 1/len(`nodes`)."""
        total = self.total
        fair = 1 / partitions
        top = [
            {
                "slot": slot,
                "commands": count,
                "share": _ratio(count, total),
                "x_fair": _ratio(count, total * fair),
                "example_key": self.examples[slot],
            }
            for slot, count in self.slots.most_common(TOP_SLOTS)
        ]
        by_node = {node: self.nodes.get(node, 0) for node in nodes}
        busiest_node = max(by_node, key=lambda n: by_node[n]) if by_node else None
        return {
            "payments": items,
            "commands": total,
            "commands_per_payment": _ratio(total, items),
            "from_lua": self.from_lua,
            "unkeyed": self.unkeyed,
            "multi_slot": self.multi_slot,
            "slots_used": len(self.slots),
            "fair_slot_share": round(fair, 4),
            "busiest_slot": top[0] if top else None,
            "top_slots": top,
            "nodes": {node: _ratio(count, total) for node, count in by_node.items()},
            "busiest_node": busiest_node,
            "busiest_node_share": _ratio(by_node[busiest_node], total) if busiest_node else None,
            "fair_node_share": round(1 / len(nodes), 4) if nodes else None,
        }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def parse_cluster_primaries(text: str) -> list[tuple[str, int]]:
    """`(host, port)` of every primary serving slots in a `CLUSTER NODES` answer."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = fields[2].split(",")
        if "master" not in flags or "fail" in flags or len(fields) == 8:
            continue
        address = fields[1].split("@", 1)[0]
        host, _, port = address.rpartition(":")
        out.append((host, int(port)))
    return sorted(out)
