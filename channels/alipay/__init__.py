"""Alipay OpenAPI: the adapter, its protocol code, sandbox credentials and the simulator.

`AlipayChannel` and `build` are the router's entry points; `build_app` (in
`channels.alipay.simulator`) starts the simulator.
"""

from channels.alipay.adapter import AlipayChannel, build
from channels.alipay.config import AlipayAccount, AlipayCredentials, load_credentials

__all__ = ["AlipayAccount", "AlipayChannel", "AlipayCredentials", "build", "load_credentials"]
