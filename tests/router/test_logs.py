"""Secret redaction in log records (`router.logs`): every logger, message, arguments and
traceback, whatever handler is attached."""

from __future__ import annotations

import logging

import pytest

from router import logs

API_SECRET = "sk_live_Zq3Vb7Lm2Xc9Nw4Rt8Yp1Hs6Kd5Fg0Ju-_x"
WEBHOOK_SECRET = "whsec_q3Vb7Lm2Xc9Nw4Rt8Yp1Hs6Kd5Fg0J+/u=="
ADMIN = "operators-only-token-5150"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"key {API_SECRET} used", "key sk_live_[REDACTED] used"),
        (f"b'Bearer {API_SECRET}\\x01'", "b'Bearer [REDACTED]'"),
        (f"secret={WEBHOOK_SECRET}&x=1", "secret=whsec_[REDACTED]"),
        ("authorization: basic dXNlcjpwYXNz", "authorization: basic [REDACTED]"),
        ("sk_test_ truncated", "sk_test_[REDACTED] truncated"),
        ("task_test_runner sk_testing", "task_test_runner sk_testing"),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert logs.redact(text) == shown


def test_every_logger_every_part_of_a_record(caplog: pytest.LogCaptureFixture) -> None:
    logs.install([ADMIN, None, "short"])
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("some.library.deep.inside")
    log.debug("header %s and %r", f"Bearer {API_SECRET}", {"token": ADMIN})
    log.warning("%d is not a number", API_SECRET)
    try:
        raise ValueError(f"cannot parse {WEBHOOK_SECRET}")
    except ValueError:
        log.exception("failed")
    log.info("short is not searched for", stack_info=True)
    assert len(caplog.records) == 4
    for secret in (API_SECRET[8:], WEBHOOK_SECRET[6:], ADMIN):
        assert secret not in caplog.text
    assert "header Bearer [REDACTED] and {'token': '[REDACTED]'}" in caplog.text
    assert "ValueError: cannot parse whsec_[REDACTED]" in caplog.text
    assert "short is not searched for" in caplog.text


def test_install_is_idempotent() -> None:
    logs.install()
    factory = logging.getLogRecordFactory()
    logs.install([ADMIN])
    assert logging.getLogRecordFactory() is factory
