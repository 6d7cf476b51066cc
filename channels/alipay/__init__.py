"""Alipay OpenAPI: the adapter, its protocol code, sandbox credentials and the simulator.

`AlipayChannel` and `build` are the router's entry points; `build_app` (in
`channels.alipay.sim.app`) starts the simulator.
"""

from channels.alipay import sandbox
from channels.alipay.adapter import AlipayChannel, build
from channels.alipay.config import AlipayAccount, AlipayCredentials, load_credentials
from channels.spec import ChannelSpec

__all__ = [
    "CHANNEL",
    "AlipayAccount",
    "AlipayChannel",
    "AlipayCredentials",
    "build",
    "load_credentials",
]

CHANNEL = ChannelSpec(
    wallet="alipay",
    account=AlipayAccount,
    build=build,
    load_credentials=load_credentials,
    sandbox_credentials=sandbox.credentials_path,
    simulator="channels.alipay.sim.app:build_app",
    simulator_port=8092,
)
"""This channel's entry in `channels.registry`."""
