"""WeChat Pay API v3: the adapter, its protocol code, sandbox credentials and the simulator.

`WeChatChannel` and `build` are the router's entry points; `build_app` (in
`channels.wechat.sim.app`) starts the simulator.
"""

import re

from channels.spec import BuyerCode, ChannelSpec, InApp
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
    name="WeChat Pay",
    auth_code=BuyerCode(re.compile(r"1[0-5]"), "10-15"),
    payer_id=BuyerCode(
        re.compile(r"[A-Za-z0-9_\-]{28}"), "a WeChat Pay openid (28 of A-Z a-z 0-9 - _)"
    ),
    in_app=InApp(
        re.compile(r"MicroMessenger/"),
        "jsapi",
        identifies_payer=True,
        label_zh="微信",
        sandbox_sheet="/sim/wallet/jsapi",
    ),
)
"""This channel's entry in `channels.registry`."""
