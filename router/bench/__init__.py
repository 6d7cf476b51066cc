"""`payrouter bench`: a benchmark harness for the router on one machine's loopback.

It starts (or attaches to) Redis, the channel simulators, a webhook receiver, router
processes and a floor process; drives each scenario at a fixed concurrency or rate; and
reports latency, throughput, CPU per payment (router against the floor), Redis commands and
round trips per payment, and scale-out from one router process to more.

    harness.py   one run: phases, counters, the report     setup.py   what runs, and where
    scenarios.py the operations and the webhook receiver   load.py    closed and open loops
    probes.py    CPU and Redis counters                     stats.py   the pure arithmetic
    procs.py     child processes                            report.py  the text table
    floor.py     the floor process                          simproc.py the simulators' process
    cli.py       the click command
"""
