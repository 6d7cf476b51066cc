"""The clients. `AsyncClient` sends every request (aiohttp); `Client` is the same client run on
a private event loop in a background thread, for code that is not async.

Every request goes through `AsyncClient.request`, which:
- authenticates with `Authorization: Bearer <api_key>`, or, given `signing_key_id`, signs it
  (`X-Payrouter-Key-Id`, `-Timestamp`, `-Nonce`, `-Signature`) afresh for each attempt;
- gives each POST an `Idempotency-Key` (a uuid4 unless the caller passes one) and sends the
  same key on every retry, so a retried create can never make a second payment;
- retries connection errors, timeouts, 5xx answers and `429 rate_limit_error` (the request
  did nothing) (`max_retries` times), with exponential backoff, jitter and `Retry-After`;
  other 4xx answers are never retried;
- waits out `409 idempotency_key_in_use` (an earlier attempt with the same key is still
  running, or died and its lease has not ended): as long as `Retry-After` says, then the
  same request with the same key again, for at most `key_in_use_timeout` seconds in all.

`Retry-After` is read as RFC 9110 writes it (whole seconds in ASCII digits, or an HTTP date);
anything else is ignored and the client's own backoff applies. No single wait is longer than
`max_retry_wait`: an answer asking for more is raised instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import random
import secrets
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from pydantic import BaseModel, ValidationError
from yarl import URL

from payrouter_sdk._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    PayrouterError,
    RateLimitError,
    error_from_response,
    parse_retry_after,
)
from payrouter_sdk._resources import (
    AsyncEvents,
    AsyncPaymentLinks,
    AsyncPayments,
    AsyncRefunds,
    AsyncSettlements,
    AsyncWebhookEndpoints,
    Events,
    PaymentLinks,
    Payments,
    Refunds,
    Settlements,
    WebhookEndpoints,
)
from payrouter_sdk._version import __version__

log = logging.getLogger("payrouter_sdk")
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Params = Mapping[str, str | int | bool | None]

DEFAULT_TIMEOUT = 30.0
DEFAULT_KEY_IN_USE_TIMEOUT = 60.0
"""Long enough for the router's create deadline (20 s) plus a crashed attempt's lease."""
DEFAULT_MAX_RETRY_WAIT = 60.0
USER_AGENT = f"payrouter-sdk-python/{__version__}"
# Channel answers that are final, not transient: a 502 `channel_outcome_unknown` leaves the
# payment `processing` (a retry would only meet `duplicate_order`), a 502 `channel_declined`
# is the channel's refusal. Only 503 `channel_unavailable` says "nothing happened, retry".
_FINAL_CHANNEL_CODES = frozenset({"channel_outcome_unknown", "channel_declined"})


def sign_request(
    secret: str, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """`X-Payrouter-Signature`: base64(HMAC-SHA256(secret, the request's signing string))."""
    digest = hashlib.sha256(body).hexdigest()
    message = f"{method.upper()}\n{path_with_query}\n{timestamp}\n{nonce}\n{digest}\n"
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class AsyncClient:
    """The payrouter merchant API, async. Use it as `async with AsyncClient(...) as client:`
    or call `await client.close()` when done.

    `api_key` is the secret key (`sk_test_...` / `sk_live_...`). Given `signing_key_id`
    (`key_...`), requests are signed with that secret instead of sending it. `timeout` is
    seconds per attempt; `max_retries` how many times a failed attempt is repeated.
    `key_in_use_timeout` is how long, in all, a call waits for an earlier request with its
    Idempotency-Key to finish (`409 idempotency_key_in_use`) before raising
    `IdempotencyError`; these waits do not count as retries. `max_retry_wait` is the longest
    single wait: an answer whose `Retry-After` asks for more is raised, not waited for.
    `session` lets an application share its own aiohttp session (it is not closed here).
    """

    initial_retry_delay = 0.5
    """The first backoff, and the shortest wait for a key in use (a `Retry-After: 0` repeated
    must not turn into a request loop)."""
    max_retry_delay = 8.0

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        signing_key_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        key_in_use_timeout: float = DEFAULT_KEY_IN_USE_TIMEOUT,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"base_url must be http(s)://host[:port][/path], not {base_url!r}")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        for name, seconds in (
            ("key_in_use_timeout", key_in_use_timeout),
            ("max_retry_wait", max_retry_wait),
        ):
            if not (math.isfinite(seconds) and seconds >= 0):
                raise ValueError(f"{name} must be 0 or more seconds, not {seconds!r}")
        self.base_url = base_url.rstrip("/")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self._api_key = api_key
        self.signing_key_id = signing_key_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.key_in_use_timeout = key_in_use_timeout
        self.max_retry_wait = max_retry_wait
        self._session = session
        self._owns_session = session is None
        self.payments = AsyncPayments(self)
        self.refunds = AsyncRefunds(self)
        self.events = AsyncEvents(self)
        self.webhook_endpoints = AsyncWebhookEndpoints(self)
        self.payment_links = AsyncPaymentLinks(self)
        self.settlements = AsyncSettlements(self)

    def __repr__(self) -> str:
        mode = "signed" if self.signing_key_id else "bearer"
        return f"<AsyncClient {self.base_url} {mode}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session this client opened (a session passed in is left open)."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one API request (with retries) and return its decoded JSON body.

        The resources use this; it also reaches endpoints this SDK does not know yet.
        """
        method = method.upper()
        query = urlencode(
            [(k, _query_value(v)) for k, v in (params or {}).items() if v is not None],
            quote_via=quote,
        )
        target = self._base_path + path + (f"?{query}" if query else "")
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        elif idempotency_key is not None:
            raise ValueError("idempotency_key applies to POST requests only")
        status, raw = await self._send_with_retries(method, target, data, headers)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise APIError(
                f"HTTP {status} answer is not JSON",
                status=status,
                body=raw.decode("utf-8", "replace"),
            ) from exc

    async def _text(self, method: str, path: str, *, accept: str) -> str:
        """A GET answered in another format than JSON (`accept`, such as text/csv), as text."""
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        _, raw = await self._send_with_retries(method, self._base_path + path, b"", headers)
        return raw.decode("utf-8")

    async def _call(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> M:
        data = await self.request(
            method, path, params=params, body=body, idempotency_key=idempotency_key
        )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise APIError(f"Unexpected {model.__name__} from the API: {exc}", body=data) from exc

    async def _send_with_retries(
        self, method: str, target: str, data: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        url = URL(self._origin + target, encoded=True)
        session = self._http()
        attempt = 0
        in_use_waits = 0
        in_use_since = 0.0
        while True:
            sent = headers | self._auth_headers(method, target, data)
            error: PayrouterError
            try:
                async with session.request(
                    method,
                    url,
                    data=data or None,
                    headers=sent,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                    allow_redirects=False,
                ) as resp:
                    raw = await resp.read()
                    if resp.status < 300:
                        return resp.status, raw
                    error = error_from_response(resp.status, raw, resp.headers)
            except TimeoutError as exc:
                error = APITimeoutError(f"No answer within {self.timeout} s: {method} {target}")
                error.__cause__ = exc
            except aiohttp.ClientSSLError as exc:
                # A certificate or TLS failure is the same on every attempt.
                raise APIConnectionError(f"{type(exc).__name__}: {exc}") from exc
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                error = APIConnectionError(f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
            except aiohttp.ClientError as exc:
                raise APIConnectionError(f"{type(exc).__name__}: {exc}") from exc
            if _key_in_use(error):
                if in_use_waits == 0:
                    in_use_since = time.monotonic()
                waited = time.monotonic() - in_use_since
                delay = self._key_in_use_delay(in_use_waits, waited, error)
                if delay is None:
                    raise error
                in_use_waits += 1
                what = f"waiting {delay:.2f} s for the request holding its Idempotency-Key"
            else:
                delay = self._retry_delay(attempt, error)
                if delay is None:
                    raise error
                attempt += 1
                what = f"retry {attempt}/{self.max_retries} in {delay:.2f} s"
            log.info("payrouter: %s %s: %s after %s", method, target.split("?")[0], what, error)
            await asyncio.sleep(delay)

    def _retry_delay(self, attempt: int, error: PayrouterError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise."""
        if attempt >= self.max_retries or not _retryable(error):
            return None
        delay = min(self._backoff(attempt), self.max_retry_wait)
        asked = parse_retry_after(error.headers.get("Retry-After"))
        if asked is not None:
            if asked > self.max_retry_wait:
                return None
            delay = max(delay, asked)
        return delay

    def _key_in_use_delay(self, waits: int, waited: float, error: PayrouterError) -> float | None:
        """Seconds to wait for the request holding the key, as the router announces them, or
        None when that would take the time spent on it (`waited` seconds since the first
        `409`, after `waits` waits) past `key_in_use_timeout`, or asks for more than
        `max_retry_wait`."""
        asked = parse_retry_after(error.headers.get("Retry-After"))
        if asked is None:
            # A router that does not say (or says something unreadable): back off as for any
            # retry.
            asked = self._backoff(waits)
        elif asked > self.max_retry_wait:
            return None
        delay = min(max(asked, self.initial_retry_delay), self.max_retry_wait)
        if waited + delay > self.key_in_use_timeout:
            return None
        return delay

    def _backoff(self, attempt: int) -> float:
        full = min(self.max_retry_delay, self.initial_retry_delay * 2.0**attempt)
        return full * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret

    def _auth_headers(self, method: str, target: str, data: bytes) -> dict[str, str]:
        if self.signing_key_id is None:
            return {"Authorization": f"Bearer {self._api_key}"}
        timestamp = str(int(time.time()))
        nonce = secrets.token_urlsafe(18)
        return {
            "X-Payrouter-Key-Id": self.signing_key_id,
            "X-Payrouter-Timestamp": timestamp,
            "X-Payrouter-Nonce": nonce,
            "X-Payrouter-Signature": sign_request(
                self._api_key, method, target, timestamp, nonce, data
            ),
        }

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop that will use it.
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise RuntimeError("the aiohttp session passed to AsyncClient is closed")
            self._session = aiohttp.ClientSession()
        return self._session


def _key_in_use(error: PayrouterError) -> bool:
    return error.status == 409 and error.code == "idempotency_key_in_use"


def _retryable(error: PayrouterError) -> bool:
    if isinstance(error, APIConnectionError | RateLimitError):
        return True
    if error.status is None or error.status < 500:
        return False
    return not (error.type == "channel_error" and error.code in _FINAL_CHANNEL_CODES)


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Client:
    """The payrouter merchant API, blocking. Use it as `with Client(...) as client:` or call
    `client.close()` when done. Arguments as for `AsyncClient`.

    Each call runs the async client on a private event loop in a background thread, so the
    two behave the same (retries, idempotency keys, signing). One `Client` may be shared by
    threads.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        signing_key_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        key_in_use_timeout: float = DEFAULT_KEY_IN_USE_TIMEOUT,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
    ) -> None:
        self._async = AsyncClient(
            api_key,
            base_url,
            signing_key_id=signing_key_id,
            timeout=timeout,
            max_retries=max_retries,
            key_in_use_timeout=key_in_use_timeout,
            max_retry_wait=max_retry_wait,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="payrouter-sdk", daemon=True
        )
        self._thread.start()
        self._closed = False
        self.payments = Payments(self._async.payments, self._run)
        self.refunds = Refunds(self._async.refunds, self._run)
        self.events = Events(self._async.events, self._run)
        self.webhook_endpoints = WebhookEndpoints(self._async.webhook_endpoints, self._run)
        self.payment_links = PaymentLinks(self._async.payment_links, self._run)
        self.settlements = Settlements(self._async.settlements, self._run)

    @property
    def async_client(self) -> AsyncClient:
        """The `AsyncClient` underneath (its settings, such as retry delays, apply here)."""
        return self._async

    def __repr__(self) -> str:
        return f"<Client {self._async.base_url}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """As `AsyncClient.request`."""
        return self._run(
            self._async.request(
                method, path, params=params, body=body, idempotency_key=idempotency_key
            )
        )

    def close(self) -> None:
        """Close the HTTP session and stop the background loop. Safe to call twice."""
        if self._closed:
            return
        try:
            self._run(self._async.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("this Client is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking Client cannot be called from its own loop")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise
