"""WeChat Pay API v3 messages, pure functions with no I/O.

`wire` (times, JSON, the signed request), `requests` (what the adapter sends), `answers`
(verified answers read as `channels.base` values) and `codes` (states and errors).
"""
