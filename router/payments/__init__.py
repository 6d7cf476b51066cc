"""The life of payments and refunds: create and failover, close, refunds, the re-query worker,
settling what a crash left behind.
"""
