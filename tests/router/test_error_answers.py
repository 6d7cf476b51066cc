"""Each domain error meaning has one HTTP answer, chosen in `router.api.errors` alone."""

from __future__ import annotations

import pytest

from router import domain_errors as d
from router.api.errors import api_error
from router.api.middleware import error_response

CASES = [
    (d.InvalidField("parameter_invalid", "bad", param="amount"), 400, "invalid_request_error"),
    (d.NotFound("payment", "pay_x"), 404, "invalid_request_error"),
    (d.StateConflict("duplicate_order", "used", payment_id="pay_1"), 409, "invalid_request_error"),
    (d.RiskDeclined("risk_declined", "blocked by rule x", payment_id="pay_1"), 402, "risk_error"),
    (d.ChannelDeclined("channel_declined", "no", payment_id="pay_1"), 402, "channel_error"),
    (d.ChangeRefused("channel_declined", "no", payment_id="pay_1"), 502, "channel_error"),
    (d.OutcomeUnknown("channel_outcome_unknown", "?", payment_id="pay_1"), 502, "channel_error"),
    (d.TradeMismatch("other amount", payment_id="pay_1", refund_id="re_1"), 502, "channel_error"),
    (d.ChannelDown("channel_unavailable", "down", payment_id="pay_1"), 503, "channel_error"),
]


@pytest.mark.parametrize(("exc", "status", "kind"), CASES, ids=lambda v: type(v).__name__)
def test_each_meaning_has_its_answer(exc: d.DomainError, status: int, kind: str) -> None:
    answer = api_error(exc)
    assert (answer.status, answer.type) == (status, kind)
    error = answer.body()["error"]
    assert (error["code"], error["message"], error["param"]) == (exc.code, exc.message, exc.param)
    assert error.get("payment_id") == exc.payment_id
    assert error.get("refund_id") == exc.refund_id
    assert "Retry-After" not in error_response(answer).headers


def test_every_meaning_is_covered() -> None:
    def leaves(cls: type[d.DomainError]) -> set[type[d.DomainError]]:
        subs = cls.__subclasses__()
        return set().union(*(leaves(s) for s in subs)) if subs else {cls}

    assert leaves(d.DomainError) == {type(exc) for exc, _, _ in CASES}
