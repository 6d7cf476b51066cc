"""Payment channel adapters and simulators: WeChat Pay, Alipay, UnionPay."""
