"""Alipay OpenAPI messages, pure functions with no I/O.

`wire` (times, yuan amounts, the signed parameters and the verified reply), `requests` (what the
adapter sends or hands the buyer), `answers` (verified replies read as `channels.base` values)
and `codes` (states and error codes).
"""
