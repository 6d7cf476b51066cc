"""The HTTP layer: middlewares, the merchant API, the admin API, channel callbacks and the OpenAPI
document. Handlers parse and render; services decide.
"""
