"""The UnionPay simulator: `app.build_app` serves it (see `channels.unionpay.sim.app`)."""
