"""Merchant webhooks: signing and delivery (the safe resolver), the dispatcher that never loses
an event. Which URLs may receive them is `router/urls.py`, shared with the API and the CLI.
"""
