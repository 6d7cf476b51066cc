"""Structured logs, and keeping secrets out of them and out of aiohttp's answers.

Every log record, from any logger (`logging.getLogger(...)` call sites stay as they are),
goes through structlog's stdlib integration (`configure`): one JSON object per line for
`serve` (`time`, `level`, `logger`, `message`, and when known `request_id`, `trace_id`,
`merchant`, `payment`, `account`, `operation`, `outcome`, `duration_ms`, `status`), or
readable lines for `dev` and the other commands. The request fields come from context
variables the request middleware binds (`bind_request`, `bind`): a log line written anywhere
during a request carries them, channel calls' included. A W3C `traceparent` header is
accepted (`TraceContext`), its trace id logged as `trace_id` and answered back.

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
import secrets
import sys
import traceback
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, TextIO

import structlog
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


LogFormat = Literal["json", "console"]
FIELDS = (
    "request_id",
    "trace_id",
    "merchant",
    "payment",
    "account",
    "operation",
    "outcome",
    "duration_ms",
    "status",
    "method",
    "route",
)
"""The structured fields a record may carry, from context variables or `extra=`."""


def _exception_text(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # `RedactSecrets` has already turned the traceback into redacted text on the record.
    record = event.get("_record")
    if isinstance(record, logging.LogRecord) and record.exc_text:
        event["exception"] = record.exc_text
    return event


def _redact_values(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    # The message is redacted as the record is made; this covers the context and `extra=`.
    return {k: redact(v) if isinstance(v, str) else v for k, v in event.items()}


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to its stream, or to whatever `sys.stderr` is at the time (a test runner may
    swap it, and close the one it swapped in)."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._fixed = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._fixed or sys.stderr
        super().emit(record)


def configure(
    log_format: LogFormat = "console", level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send every record of every logger to `stream` (stderr) as `log_format` lines.

    Calling it again switches format (a verb that serves switches to JSON after the command
    group set up readable lines). Like `logging.basicConfig`, it leaves the root logger (its
    level and output) alone when someone else (a test runner, an embedding program) put
    handlers on it; an explicit `stream` is always written to.
    """
    install()
    shared: list[Any] = [
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.ExtraAdder(allow=FIELDS),
        _exception_text,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False, event_key="message", timestamp_key="time")
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.EventRenamer("message"),
            _redact_values,
            renderer,
        ],
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if stream is None and root.handlers:
        return
    root.setLevel(level)
    handler = _Handler(stream)
    handler.setFormatter(formatter)
    root.addHandler(handler)


def bind(**fields: str) -> None:
    """Add `fields` to every log record of the current request (or task) from now on."""
    structlog.contextvars.bind_contextvars(**fields)


TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    """A request's W3C trace context: the caller's trace (or a new one) and our span in it."""

    trace_id: str
    span_id: str
    flags: str = "00"

    @classmethod
    def from_header(cls, value: str | None) -> TraceContext:
        """The caller's trace from a `traceparent` header; a new trace when there is none or
        it is malformed (W3C Trace Context: version 00, an all-zero id is invalid)."""
        span_id = secrets.token_hex(8)
        found = TRACEPARENT.fullmatch((value or "").strip().lower())
        if found and found[1] != "0" * 32 and found[2] != "0" * 16:
            return cls(found[1], span_id, found[3])
        return cls(secrets.token_hex(16), span_id)

    @property
    def header(self) -> str:
        """The `traceparent` answered: the same trace, our span as the parent."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


@contextmanager
def bind_request(request_id: str, trace: TraceContext) -> Iterator[None]:
    """The log context of one request: its id and trace, and whatever is bound during it
    (`bind`), dropped when it ends."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id, trace_id=trace.trace_id)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
