"""Where commands land: MONITOR lines parsed, their keys found, tallied per slot and node."""

from __future__ import annotations

from collections import Counter

import pytest
from redis.crc import key_slot

from benchmarks.harness.probes import RedisAddress, addresses_of
from benchmarks.harness.scenarios import SPREAD_MERCHANTS, spread_merchant
from benchmarks.harness.spread import (
    MonitorCommand,
    SpreadTally,
    keys_of,
    parse_cluster_primaries,
    parse_monitor_line,
    slot_of,
    unescape,
)
from benchmarks.harness.stats import RedisSnapshot, add_snapshots

CLIENT = "+1795986272.162822 [0 127.0.0.1:53796] "
LUA = "+1795986272.162900 [0 lua] "


def command(name: str, *args: str, from_lua: bool = False) -> MonitorCommand:
    return MonitorCommand(name, tuple(a.encode() for a in args), from_lua)


def test_a_client_line_and_a_script_line() -> None:
    line = CLIENT + '"EVALSHA" "abc123" "2" "pr:{p1.0}:pay:x" "pr:{p1.0}:due" "7"\r\n'
    assert parse_monitor_line(line) == command(
        "evalsha", "abc123", "2", "pr:{p1.0}:pay:x", "pr:{p1.0}:due", "7"
    )
    assert parse_monitor_line(LUA + '"hset" "pr:{p1.0}:pay:x" "status" "pending"') == command(
        "hset", "pr:{p1.0}:pay:x", "status", "pending", from_lua=True
    )


def test_escapes_are_undone() -> None:
    # What Redis prints for SET 'a b"c\' with a value holding bytes 0x01 and 0xff.
    line = CLIENT + r'"set" "a b\"c\\" "x\x01\xff" "l\n\r\t"'
    parsed = parse_monitor_line(line)
    assert parsed is not None
    assert parsed.args == (b'a b"c\\', b"x\x01\xff", b"l\n\r\t")
    assert unescape(r"\x4") == b"x4"  # not two hex digits: the letter itself


@pytest.mark.parametrize("line", ["+OK\r\n", "", "\r\n", "+1795986272.1 [0 lua] ", "garbage"])
def test_what_is_not_a_command_line(line: str) -> None:
    assert parse_monitor_line(line) is None


def test_a_unix_socket_client_and_another_database() -> None:
    parsed = parse_monitor_line('1795986272.1 [3 unix:/run/redis.sock] "get" "k"')
    assert parsed == command("get", "k")


@pytest.mark.parametrize(
    ("cmd", "keys"),
    [
        (command("evalsha", "sha", "3", "k1", "k2", "k3", "arg"), ("k1", "k2", "k3")),
        (command("eval", "return 1", "0", "arg"), ()),
        (command("evalsha_ro", "sha", "1", "k1"), ("k1",)),
        (command("evalsha", "sha", "many", "k1"), ()),
        (command("hset", "k", "f", "v"), ("k",)),
        (command("zadd", "k", "1", "m"), ("k",)),
        (command("ping"), ()),
        (command("multi"), ()),
        (command("client", "setinfo", "lib-name", "x"), ()),
        (command("command", "getkeys", "xreadgroup"), ()),
        (command("mget", "a", "b"), ("a", "b")),
        (command("mset", "a", "1", "b", "2"), ("a", "b")),
        (
            command("xreadgroup", "GROUP", "g", "c", "COUNT", "5", "streams", "s1", "s2", ">", ">"),
            ("s1", "s2"),
        ),
        (command("xreadgroup", "GROUP", "g", "c"), ()),
    ],
)
def test_keys_of(cmd: MonitorCommand, keys: tuple[str, ...]) -> None:
    assert keys_of(cmd) == tuple(k.encode() for k in keys)


def test_slot_of_one_slot_many_slots_and_none() -> None:
    same = command("evalsha", "sha", "2", "pr:{p1.0}:a", "pr:{p1.0}:b")
    assert slot_of(same) == key_slot(b"p1.0")
    assert slot_of(command("xread", "STREAMS", "{a}s", "{b}s", "0", "0")) is None
    assert slot_of(command("ping")) is None


def test_tally_per_slot_and_node() -> None:
    tally = SpreadTally()
    tally.add_lines(
        "n1",
        [
            "+OK",
            CLIENT + '"evalsha" "sha" "2" "pr:{p1.0}:pay:x" "pr:{p1.0}:due"',
            LUA + '"hset" "pr:{p1.0}:pay:x" "status" "pending"',
            LUA + '"zadd" "pr:{p1.0}:due" "1" "x"',
            CLIENT + '"hget" "pr:{cb:acct}:state" "open"',
            CLIENT + '"ping"',
            CLIENT + '"info" "commandstats"',  # the harness's own: not counted
            CLIENT + '"xread" "STREAMS" "{a}s" "{b}s" "0" "0"',
        ],
    )
    tally.add_lines("n2", [CLIENT + '"get" "pr:{p2.0}:m:mch:order:o1"'])
    slot1, slot2, cb = key_slot(b"p1.0"), key_slot(b"p2.0"), key_slot(b"cb:acct")
    assert tally.slots == Counter({slot1: 3, cb: 1, slot2: 1})
    assert tally.nodes == Counter({"n1": 6, "n2": 1})
    assert (tally.total, tally.unkeyed, tally.multi_slot, tally.from_lua) == (7, 1, 1, 2)
    assert tally.examples[slot1] == "pr:{p1.0}:pay:x"

    summary = tally.summary(partitions=4, items=2, nodes=["n1", "n2", "n3"])
    assert summary["commands"] == 7 and summary["commands_per_payment"] == 3.5
    busiest = summary["busiest_slot"]
    assert isinstance(busiest, dict)
    assert busiest["slot"] == slot1 and busiest["example_key"] == "pr:{p1.0}:pay:x"
    # 3 of 7 commands where a quarter (1/partitions) would be fair: 3/7 * 4 = 1.714.
    assert busiest["share"] == round(3 / 7, 4) and busiest["x_fair"] == round(12 / 7, 4)
    assert summary["fair_slot_share"] == 0.25 and summary["slots_used"] == 3
    assert summary["nodes"] == {"n1": round(6 / 7, 4), "n2": round(1 / 7, 4), "n3": 0.0}
    assert summary["busiest_node"] == "n1" and summary["busiest_node_share"] == round(6 / 7, 4)
    assert summary["fair_node_share"] == round(1 / 3, 4)


def test_an_empty_tally() -> None:
    summary = SpreadTally().summary(partitions=64, items=0, nodes=["n1"])
    assert summary["busiest_slot"] is None and summary["commands_per_payment"] is None
    assert summary["busiest_node_share"] is None and summary["top_slots"] == []


CLUSTER_NODES = """\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002,host-b master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master - 0 1426238318243 3 connected 10923-16383
6ec2 127.0.0.1:30005@40005 master,fail - 1426238316232 0 5 disconnected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [5461->-67ed]
"""


def test_cluster_primaries_serving_slots() -> None:
    assert parse_cluster_primaries(CLUSTER_NODES) == [
        ("127.0.0.1", 30001),
        ("127.0.0.1", 30002),
        ("127.0.0.1", 30003),
    ]


def test_cluster_counters_add_up() -> None:
    one = RedisSnapshot(calls={"hset": 2, "get": 1}, reads=5, commands=3)
    two = RedisSnapshot(calls={"hset": 1, "evalsha": 4}, reads=7, commands=5)
    assert add_snapshots([one, two]) == RedisSnapshot(
        calls={"hset": 3, "get": 1, "evalsha": 4}, reads=12, commands=8
    )


def test_addresses_of_a_multi_host_url() -> None:
    # urlsplit(...).port raises on a netloc with several hosts: each host is read alone.
    assert addresses_of("redis+cluster://u:p%40ss@127.0.0.1:7001,localhost:7002") == (
        [
            RedisAddress("127.0.0.1", 7001, "u", "p@ss"),
            RedisAddress("localhost", 7002, "u", "p@ss"),
        ],
        True,
    )
    assert addresses_of("redis://127.0.0.1/0") == ([RedisAddress("127.0.0.1", 6379)], False)


def test_one_merchant_sends_half_of_the_spread_creates() -> None:
    turns = Counter(spread_merchant(i, SPREAD_MERCHANTS) for i in range(30 * 4))
    assert turns[0] == 60
    assert {turns[m] for m in range(1, SPREAD_MERCHANTS)} == {4}
    assert spread_merchant(7, 1) == 0
