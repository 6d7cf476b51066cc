"""`/openapi.json`, generated from the pydantic models the handlers use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from router.api import ListQuery, RefundListQuery
from router.api_events import (
    Event,
    EventList,
    EventListQuery,
    WebhookEndpoint,
    WebhookEndpointList,
)
from router.models import (
    CreatePaymentRequest,
    CreateRefundRequest,
    ErrorResponse,
    Payment,
    PaymentList,
    Refund,
    RefundList,
)

ERRORS = {
    "400": "Invalid request; `error.param` names the field",
    "401": "Authentication failed",
    "402": "The channel refused the payment",
    "403": "Permission denied",
    "404": "No such resource",
    "409": "Conflict: duplicate merchant_order_id, wrong status, or idempotency key in use",
    "422": "Idempotency-Key reused with a different request",
    "502": "The channel's outcome is unknown; the payment stays processing",
    "503": "The channel is unavailable; nothing was created",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _responses(ok: str, model: type[BaseModel], *codes: str) -> dict[str, Any]:
    out = {ok: _json(model, "Success")}
    for code in codes:
        out[code] = _json(ErrorResponse, ERRORS[code])
    return out


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [
        {"name": name, "in": "query", "required": False, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
IDEMPOTENCY_PARAM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Replays the first answer for 24 h; 422 if reused with another body.",
}


def build_spec() -> dict[str, Any]:
    _, defs = models_json_schema(
        [
            (m, "validation")
            for m in (
                CreatePaymentRequest,
                Payment,
                PaymentList,
                CreateRefundRequest,
                Refund,
                RefundList,
                Event,
                EventList,
                WebhookEndpoint,
                WebhookEndpointList,
                ErrorResponse,
            )
        ],
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "payrouter",
            "version": "1",
            "description": "One payment API over WeChat Pay, Alipay and UnionPay. Amounts are "
            "integers in the currency's minor unit.",
        },
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "signed": {"type": "apiKey", "in": "header", "name": "X-Payrouter-Signature"},
            },
        },
        "security": [{"bearer": []}, {"signed": []}],
        "paths": {
            "/v1/payments": {
                "post": {
                    "summary": "Create a payment",
                    "parameters": [IDEMPOTENCY_PARAM],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(CreatePaymentRequest)}},
                    },
                    "responses": _responses(
                        "201", Payment, "400", "401", "402", "409", "422", "502", "503"
                    ),
                },
                "get": {
                    "summary": "List payments, newest first",
                    "parameters": _query_parameters(ListQuery),
                    "responses": _responses("200", PaymentList, "400", "401"),
                },
            },
            "/v1/payments/{id}": {
                "get": {
                    "summary": "Retrieve a payment",
                    "parameters": [ID_PARAM],
                    "responses": _responses("200", Payment, "401", "404"),
                }
            },
            "/v1/payments/{id}/close": {
                "post": {
                    "summary": "Close an unpaid payment, at the channel too",
                    "parameters": [ID_PARAM, IDEMPOTENCY_PARAM],
                    "responses": _responses("200", Payment, "401", "404", "409", "503"),
                }
            },
            "/v1/payments/{id}/refunds": {
                "post": {
                    "summary": "Refund all or part of a succeeded payment",
                    "description": "201 for a new refund; 200 with the existing one when "
                    "merchant_refund_id was used before.",
                    "parameters": [ID_PARAM, IDEMPOTENCY_PARAM],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(CreateRefundRequest)}},
                    },
                    "responses": _responses(
                        "201", Refund, "400", "401", "402", "404", "409", "503"
                    ),
                },
                "get": {
                    "summary": "A payment's refunds, newest first",
                    "parameters": [ID_PARAM, *_query_parameters(RefundListQuery)],
                    "responses": _responses("200", RefundList, "400", "401", "404"),
                },
            },
            "/v1/events": {
                "get": {
                    "summary": "Webhook events, newest first",
                    "parameters": _query_parameters(EventListQuery),
                    "responses": _responses("200", EventList, "400", "401"),
                }
            },
            "/v1/events/{id}": {
                "get": {
                    "summary": "One event with its delivery attempts",
                    "parameters": [ID_PARAM],
                    "responses": _responses("200", Event, "401", "404"),
                }
            },
            "/v1/events/{id}/resend": {
                "post": {
                    "summary": "Deliver the event again, on a fresh retry schedule",
                    "parameters": [ID_PARAM],
                    "responses": _responses("200", Event, "401", "404"),
                }
            },
            "/v1/webhook_endpoints/disabled": {
                "get": {
                    "summary": "Webhook endpoints disabled because they answered 410 Gone",
                    "responses": _responses("200", WebhookEndpointList, "401"),
                }
            },
            "/v1/webhook_endpoints/{id}/enable": {
                "post": {
                    "summary": "Deliver to a disabled webhook endpoint again",
                    "description": "Dead letters from while it was disabled are not sent by "
                    "this: resend them with POST /v1/events/{id}/resend.",
                    "parameters": [ID_PARAM, IDEMPOTENCY_PARAM],
                    "responses": _responses("200", WebhookEndpoint, "401", "404"),
                }
            },
            "/v1/refunds/{id}": {
                "get": {
                    "summary": "Retrieve a refund",
                    "parameters": [ID_PARAM],
                    "responses": _responses("200", Refund, "401", "404"),
                }
            },
        },
    }
