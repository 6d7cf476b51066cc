"""Keeping secrets out of logs and out of aiohttp's answers to malformed requests.

Two leaks are closed here:

- Any log record may quote a secret: aiohttp's HTTP parser puts the raw header line it
  refuses (an `Authorization: Bearer sk_live_...` holding a control character, or an over-long
  one) into the exception it logs; an exception message or a URL may hold one too.
  `install` makes every record of every logger pass through `RedactSecrets` as it is created,
  so no handler (a file, journald, pytest's caplog) ever sees the secret. API secrets
  (`sk_test_...`, `sk_live_...`), webhook secrets (`whsec_...`), `Bearer`/`Basic` credentials
  and the configured admin token and secret key become `[REDACTED]`.
- aiohttp answers a request it cannot parse with that same message as the 400 body, echoing
  the header back. `Runner` serves an application with a request handler that answers such a
  request with a plain `400 Bad Request: <kind of problem>` and logs one line without the
  request's bytes.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

REDACTED = "[REDACTED]"
_RUN = r"[^\s'\"]"
"""What a secret runs on for: up to whitespace or a quote. Generous on purpose: the escapes
of a `repr()` (`\\x01`) and a trailing `&x=1` are hidden too, never a secret's tail."""
_PATTERNS = (
    re.compile(rf"(?<![A-Za-z0-9])(sk_(?:test|live)_|whsec_){_RUN}*"),
    re.compile(rf"(?i)\b(bearer|basic)(\s+){_RUN}+"),
)
_MIN_LITERAL = 8
"""Configured secrets shorter than this are not searched for: too likely to be ordinary text."""
_literals: set[str] = set()
log = logging.getLogger("payrouter.http")


def redact(text: str) -> str:
    """`text` with every secret this module knows of replaced by `[REDACTED]`."""
    text = _PATTERNS[0].sub(lambda m: m.group(1) + REDACTED, text)
    text = _PATTERNS[1].sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    for literal in _literals:
        text = text.replace(literal, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, arguments, traceback and stack with secrets redacted.

    The message is formatted here, once, so a secret passed as an argument is caught too; a
    record whose arguments do not fit its format keeps both, redacted, in its message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks quote exception messages: keep the text, redacted, and drop the
            # exception itself so no formatter renders it again from the original.
            formatted = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(formatted)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactSecrets()


def install(secrets: Iterable[str | None] = ()) -> None:
    """Redact every log record from now on; also redact each of `secrets` wherever it appears.

    Idempotent: calling it again only adds secrets.
    """
    _literals.update(s for s in secrets if s and len(s) >= _MIN_LITERAL)
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _FILTER.filter(record)
        return record

    redacting_factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


class _QuietRequestHandler(RequestHandler):
    """Answers a request aiohttp could not parse without quoting any of its bytes."""

    __slots__ = ()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        # The parser's message goes on to quote the request's bytes after its first colon.
        problem = re.split(r"[:\n'\"]", exc.message or "", maxsplit=1)[0].strip()
        log.info("refused an unparsable request from %s (%s)", request.remote, problem)
        response = web.Response(status=status, text=f"{_phrase(status)}: {problem}\n")
        response.force_close()
        return response


def _phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class _QuietServer(web.Server):
    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        # aiohttp builds its own RequestHandler; this one differs only in handle_error.
        handler.__class__ = _QuietRequestHandler
        return handler


class Runner(web.AppRunner):
    """`web.AppRunner` whose connections answer unparsable requests without echoing them."""

    __slots__ = ()

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _QuietServer
        return server
