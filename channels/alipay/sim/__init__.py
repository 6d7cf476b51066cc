"""The Alipay simulator: `app.build_app` serves it (see `channels.alipay.sim.app`)."""
