"""Merchant webhooks: which URLs are allowed, signing and delivery, the dispatcher that never loses
an event.
"""
