"""The SDK's models read every object the published OpenAPI describes (pure logic).

`tests/e2e/test_openapi_fuzz.py` also parses every fuzzed success answer with these models;
here the document itself is compared with them, field by field.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import payrouter_sdk
from router.api.openapi import build_spec

SCHEMAS = build_spec()["components"]["schemas"]
SDK_OF = {
    "Payment": payrouter_sdk.Payment,
    "PaymentList": payrouter_sdk.PaymentList,
    "PaymentLink": payrouter_sdk.PaymentLink,
    "PaymentLinkList": payrouter_sdk.PaymentLinkList,
    "Refund": payrouter_sdk.Refund,
    "RefundList": payrouter_sdk.RefundList,
    "Event": payrouter_sdk.Event,
    "EventList": payrouter_sdk.EventList,
    "Action": payrouter_sdk.Action,
    "Failure": payrouter_sdk.Failure,
    "Risk": payrouter_sdk.Risk,
    "Routing": payrouter_sdk.Routing,
    "RoutingAttempt": payrouter_sdk.RoutingAttempt,
    "Delivery": payrouter_sdk.Delivery,
    "Attempt": payrouter_sdk.DeliveryAttempt,
    "WebhookEndpoint": payrouter_sdk.WebhookEndpoint,
    "WebhookEndpointList": payrouter_sdk.WebhookEndpointList,
    "Settlement": payrouter_sdk.Settlement,
    "SettlementList": payrouter_sdk.SettlementList,
    "SettlementLine": payrouter_sdk.SettlementLine,
    "SettlementLineList": payrouter_sdk.SettlementLineList,
}


def test_every_answered_object_has_an_sdk_model() -> None:
    answered = {
        name for name in SCHEMAS if not name.startswith(("Create", "Error")) and name != "ErrorBody"
    }
    assert answered == SDK_OF.keys()


@pytest.mark.parametrize(("name", "model"), SDK_OF.items(), ids=list(SDK_OF))
def test_sdk_model_declares_what_the_document_describes(name: str, model: type[BaseModel]) -> None:
    schema = SCHEMAS[name]
    described = set(schema["properties"])
    assert described <= model.model_fields.keys(), "fields the SDK would only keep as extras"
    needed = {n for n, f in model.model_fields.items() if f.is_required()}
    assert needed <= set(schema.get("required", [])), "fields the SDK needs but may not get"
