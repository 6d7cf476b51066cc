"""The WeChat Pay simulator: `app.build_app` serves it (see `channels.wechat.sim.app`)."""
