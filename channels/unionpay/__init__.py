"""UnionPay online payments (ACP 5.1.0): the adapter, its protocol code, sandbox and simulator.

`UnionPayChannel` and `build` are the router's entry points; `build_app` (in
`channels.unionpay.simulator`) starts the simulator.
"""

from channels.unionpay.adapter import UnionPayChannel, build
from channels.unionpay.config import UnionPayAccount, UnionPayCredentials, load_credentials

__all__ = [
    "UnionPayAccount",
    "UnionPayChannel",
    "UnionPayCredentials",
    "build",
    "load_credentials",
]
