"""WeChat Pay API v3: the adapter, its protocol code, sandbox credentials and the simulator.

`WeChatChannel` and `build` are the router's entry points; `build_app` (in
`channels.wechat.sim.app`) starts the simulator.
"""

from channels.spec import ChannelSpec
from channels.wechat import sandbox
from channels.wechat.adapter import WeChatChannel, build
from channels.wechat.config import WeChatAccount, WeChatCredentials, load_credentials

__all__ = [
    "CHANNEL",
    "WeChatAccount",
    "WeChatChannel",
    "WeChatCredentials",
    "build",
    "load_credentials",
]

CHANNEL = ChannelSpec(
    wallet="wechat",
    account=WeChatAccount,
    build=build,
    load_credentials=load_credentials,
    sandbox_credentials=sandbox.credentials_path,
    simulator="channels.wechat.sim.app:build_app",
    simulator_port=8091,
)
"""This channel's entry in `channels.registry`."""
