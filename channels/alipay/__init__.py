"""Alipay OpenAPI: the adapter, its protocol code, sandbox credentials and the simulator.

`AlipayChannel` and `build` are the router's entry points; `build_app` (in
`channels.alipay.sim.app`) starts the simulator.
"""

import re

from channels.alipay import sandbox
from channels.alipay.adapter import AlipayChannel, build
from channels.alipay.config import AlipayAccount, AlipayCredentials, load_credentials
from channels.spec import BuyerCode, ChannelSpec, InApp

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
    name="Alipay",
    auth_code=BuyerCode(re.compile(r"2[5-9]|30"), "25-30"),
    payer_id=BuyerCode(
        re.compile(r"2088[0-9]{12}"), "an Alipay buyer id (16 digits starting 2088)"
    ),
    # In the app the mobile-site payment (wap.pay) opens Alipay's own cashier.
    in_app=InApp(re.compile(r"AlipayClient/"), "h5", label_zh="支付宝"),
)
"""This channel's entry in `channels.registry`."""
