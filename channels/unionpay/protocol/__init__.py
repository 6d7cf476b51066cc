"""UnionPay ACP 5.1.0 messages, pure functions with no I/O.

`wire` (forms, raw answers, times, amounts, order ids, the signed envelope), `requests` (what the
adapter sends or hands the buyer), `answers` (verified answers read as `channels.base` values)
and `codes` (`respCode`s, states and errors).
"""
