"""WeChat Pay API v3: the adapter, its protocol code, sandbox credentials and the simulator.

`WeChatChannel` and `build` are the router's entry points; `build_app` (in
`channels.wechat.simulator`) starts the simulator.
"""

from channels.wechat.adapter import WeChatChannel, build
from channels.wechat.config import WeChatAccount, WeChatCredentials, load_credentials

__all__ = ["WeChatAccount", "WeChatChannel", "WeChatCredentials", "build", "load_credentials"]
