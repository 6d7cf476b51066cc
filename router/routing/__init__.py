"""Where a payment goes: the routing file, rule matching and strategies, the decision, and the
accounts' health windows and circuit breakers.
"""
