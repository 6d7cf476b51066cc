"""`payrouter bench`: a benchmark harness for the router on one machine's loopback.

It starts (or attaches to, with `--target`) Redis, the channel simulators, a webhook
receiver, router processes and a floor process; drives each scenario at a fixed concurrency
or rate; and reports latency, throughput, CPU per payment (router against the floor), Redis
commands and round trips per payment, and scale-out from one router process to more. It
prints numbers and asserts nothing.

    payrouter bench                        # everything, about 80 s on 2 cores
    payrouter bench --count 500 --scenarios create-qr-wechat,floor-wechat --processes 1
    payrouter bench --json-file bench.json # the table, and every number saved as JSON
    payrouter bench --redis cluster        # against a private 3+3 Redis Cluster

Reading it:

- *router-added latency* is create-qr-wechat minus direct-wechat at each percentile: the
  same signed create, once through the router, once straight from this process.
- *router / floor CPU per payment* compares the router's CPU per created payment with a
  process that does only the unavoidable work (`floor.py`): the headline number.
- *Redis per payment* comes from the server's own counters, so it counts what reached Redis
  whoever sent it; commands run by Lua scripts appear under their own names too. On a
  cluster every counter is summed over the primaries: a batch the client splits over three
  nodes is three round trips. *Redis CPU* is the primaries' own (`/proc`), per payment and
  per command.
- *where commands land* (spread-wechat: 16 merchants, one sending half) is a measurement of
  its own, after the timed phases: `MONITOR` on every primary while `--spread-count` creates
  run. Each command counts in the slot of its first key (EVALSHA: the first key after
  numkeys; commands a Lua script runs count too) and on the node it ran on. A slot's *fair*
  share is 1/64 of all commands (payments are spread over 64 partitions, one slot each);
  *x fair* is its share divided by that, so 2.0 means twice what an even spread gives. A
  node's fair share is 1/primaries. The background loops of the routers are included.
- *busy/host*: the share of all cores the measured processes used, and the share the whole
  machine was busy. A host share well above ours means something else ran meanwhile.

Modules:

    harness.py   one run: phases, counters, the report     setup.py   what runs, and where
    scenarios.py the operations and the webhook receiver   load.py    closed and open loops
    probes.py    CPU and Redis counters                     stats.py   the pure arithmetic
    procs.py     child processes                            report.py  the text table
    floor.py     the floor process                          simproc.py the simulators' process
    spread.py    MONITOR lines, slots and nodes             cli.py     the click command
    topologies.py  Redis Cluster and Sentinel launchers (the test fixtures use them too)
"""
