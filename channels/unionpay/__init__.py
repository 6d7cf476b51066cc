"""UnionPay online payments (ACP 5.1.0): the adapter, its protocol code, sandbox and simulator.

`UnionPayChannel` and `build` are the router's entry points; `build_app` (in
`channels.unionpay.sim.app`) starts the simulator.
"""

import re

from channels.spec import BuyerCode, ChannelSpec, InApp
from channels.unionpay import sandbox
from channels.unionpay.adapter import UnionPayChannel, build
from channels.unionpay.config import UnionPayAccount, UnionPayCredentials, load_credentials

__all__ = [
    "CHANNEL",
    "UnionPayAccount",
    "UnionPayChannel",
    "UnionPayCredentials",
    "build",
    "load_credentials",
]

CHANNEL = ChannelSpec(
    wallet="unionpay",
    account=UnionPayAccount,
    build=build,
    load_credentials=load_credentials,
    sandbox_credentials=sandbox.credentials_path,
    simulator="channels.unionpay.sim.app:build_app",
    simulator_port=8093,
    name="UnionPay",
    auth_code=BuyerCode(re.compile(r"62"), "62"),
    # UnionPay's app (云闪付) names itself "UnionPay/<version>" in its browser's agent.
    in_app=InApp(re.compile(r"UnionPay/|CloudPay"), "h5", label_zh="云闪付"),
)
"""This channel's entry in `channels.registry`."""
