"""payrouter's service: the merchant API, routing, the Redis store and the background workers."""
