"""`/openapi.json`: the merchant API, generated from the models the handlers use.

The document describes what the server answers: every status each operation can give comes
from the table in `router.api.openapi.operations`, every header from `HEADERS`.
`tests/e2e/test_openapi_fuzz.py` holds the server to this document.

Channel callbacks (`/v1/notify/{account}`) speak each channel's own protocol and `/admin` is
the operator's: neither is merchant API, so neither is here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import core_schema

from router.api.auth import NONCE_PATTERN, WINDOW_S
from router.api.middleware import IDEMPOTENCY_KEY_PATTERN, MAX_BODY, REQUEST_ID_PATTERN
from router.api.openapi.operations import OPERATIONS, STATUSES, Operation
from router.models import ErrorResponse

__all__ = ["OPERATIONS", "build_spec"]

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id: the caller's `X-Request-Id` when it is 8 to 64 "
        "letters, digits, `_`, `-` or `.`, else a new one. Quote it when asking for help.",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN.pattern},
    },
    "Idempotent-Replayed": {
        "description": "`true` when the answer is the one stored for this Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying, when the server knows.",
        "schema": {"type": "integer", "minimum": 0},
    },
}

SIGNED = {
    "X-Payrouter-Key-Id": "The API key's id (`key_...`).",
    "X-Payrouter-Timestamp": f"Unix seconds, ASCII digits; within ±{WINDOW_S} s of the "
    "server's clock.",
    "X-Payrouter-Nonce": f"8 to 64 letters, digits, `-` or `_` (`{NONCE_PATTERN.pattern}`); "
    f"never accepted twice within the window.",
    "X-Payrouter-Signature": 'base64(HMAC-SHA256(secret, METHOD + "\\n" + path_with_query '
    '+ "\\n" + timestamp + "\\n" + nonce + "\\n" + hex(sha256(raw_body)) + "\\n")), with the '
    "key's signing secret.",
}
SIGNED_SCHEMES = {
    "signed" + name.removeprefix("X-Payrouter-").replace("-", ""): {
        "type": "apiKey",
        "in": "header",
        "name": name,
        "description": "One of the four headers of a signed request, sent together. " + text,
    }
    for name, text in SIGNED.items()
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {scheme: [] for scheme in SIGNED_SCHEMES}]

IDEMPOTENCY_PARAM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": IDEMPOTENCY_KEY_PATTERN.pattern.replace(r"\x21-\x7e", "!-~"),
    },
    "description": "Visible ASCII. An answer of a request that ran (2xx, or a 402 channel "
    "refusal naming the payment or refund) is stored for 24 h and replayed, with "
    "`Idempotent-Replayed: true`, to a retry with the same key and body; validation errors, "
    "409 conflicts and 5xx are not stored, so a retry runs again. The same key with another "
    "request is 422; while the first is still running, 409 with `Retry-After`. A payment or "
    "refund written under the key is bound to it: a retry after a crash answers about that "
    "object (201/200, or 402 `payment_failed` / `refund_failed`) instead of creating another.",
}


class _ResponseSchema(GenerateJsonSchema):
    """Answers carry every field (null where unset) but those a model leaves out when unset:
    in serialization mode, those are the only optional ones."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return field.get("serialization_exclude_if") is None
        return super().field_is_required(field, total)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _headers(op: Operation, status: int) -> dict[str, Any]:
    names = ["X-Request-Id"]
    if op.method == "post" and status < 500:
        names.append("Idempotent-Replayed")
    if status in (409, 503):
        names.append("Retry-After")
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _responses(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, (model, text) in op.ok.items():
        out[str(status)] = {
            "description": text,
            "headers": _headers(op, status),
            "content": {"application/json": {"schema": _ref(model)}},
        }
        if op.csv is not None:
            out[str(status)]["content"]["text/csv"] = {
                "schema": {"type": "string", "description": op.csv}
            }
    for status in sorted(op.errors):
        codes = ", ".join(f"`{c}`" for c in op.errors[status])
        out[str(status)] = {
            "description": f"{op.notes.get(status, STATUSES[status])}. `error.code`: {codes}.",
            "headers": _headers(op, status),
            "content": {"application/json": {"schema": _ref(ErrorResponse)}},
        }
    return dict(sorted(out.items()))


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        if prop.get("default", ...) is None:
            del prop["default"]
        alternatives = [s for s in prop.pop("anyOf", []) if s != {"type": "null"}]
        if alternatives:
            prop.update(alternatives[0])
        out.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": (description + " " if description else "")
                + "Empty is the same as absent.",
                "schema": prop,
            }
        )
    return out


def _operation(op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    if op.id_of is not None:
        params.append(
            {
                "name": "id",
                "in": "path",
                "required": True,
                "description": f"The {op.id_of}'s id; an unknown or malformed one is 404.",
                "schema": {"type": "string"},
            }
        )
    if op.query is not None:
        params += _query_parameters(op.query)
    if op.method == "post":
        params.append(IDEMPOTENCY_PARAM)
    out: dict[str, Any] = {"summary": op.summary}
    if op.description:
        out["description"] = op.description
    out["operationId"] = op.operation_id
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "description": f"A JSON object, at most {MAX_BODY // 1024} KiB (413 beyond).",
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    out["responses"] = _responses(op)
    return out


def _schemas() -> dict[str, Any]:
    inputs = {op.body for op in OPERATIONS if op.body is not None}
    outputs = {model for op in OPERATIONS for model, _ in op.ok.values()} | {ErrorResponse}
    _, defs = models_json_schema(
        [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
        + [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
        schema_generator=_ResponseSchema,
    )
    return dict(sorted(defs["$defs"].items()))


def build_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at `/openapi.json`."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "payrouter",
            "version": "1",
            "description": "One payment API over WeChat Pay, Alipay and UnionPay. Amounts are "
            "integers in the currency's minor unit; times are RFC 3339. Every answer carries "
            '`X-Request-Id`; every error is `{"error": {type, code, message, param}}`. '
            "Channel callbacks (`/v1/notify/{account}`, each channel's own protocol) and the "
            "operator's `/admin` API are not part of this document.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": _schemas(),
            "headers": HEADERS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer sk_test_...` (sandbox) or "
                    "`sk_live_...`.",
                },
                **SIGNED_SCHEMES,
            },
        },
        "security": SECURITY,
        "paths": paths,
    }
