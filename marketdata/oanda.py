"""The one OANDA client of the project: every call to the broker goes through ``OandaClient``.

It wraps the unmaintained oandapyV20 (no other module imports it) and adds what it lacks
(../shared/research/oanda-v20.md sections 1, 3 and 6): explicit connect/read timeouts, a shared
rate limiter below OANDA's 120 requests/s, retries with capped exponential backoff and full jitter
for 429, 5xx and connection errors on idempotent calls only, and the project's exception types
carrying the broker's errorCode and errorMessage. The token is never logged or stored.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import oandapyV20
import oandapyV20.endpoints.accounts as accounts_endpoints
import oandapyV20.endpoints.instruments as instruments_endpoints
import oandapyV20.endpoints.orders as orders_endpoints
import oandapyV20.endpoints.positions as positions_endpoints
import oandapyV20.endpoints.pricing as pricing_endpoints
import oandapyV20.endpoints.trades as trades_endpoints
import oandapyV20.endpoints.transactions as transactions_endpoints
import oandapyV20.oandapyV20 as oanda_core
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from oandapyV20.exceptions import V20Error

logger = logging.getLogger(__name__)

# OANDA's hosts (oandapyV20's TRADING_ENVIRONMENTS); anything else is named by URL.
PRACTICE = "practice"
LIVE = "live"


class OandaError(Exception):
    """A broker call that failed; ``status`` is the HTTP status where there was one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        endpoint: str = "",
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code
        self.endpoint = endpoint
        self.body = body or {}

    def __str__(self) -> str:
        parts = [
            f"{self.endpoint}:" if self.endpoint else "",
            f"HTTP {self.status}" if self.status else "",
        ]
        if self.error_code:
            parts.append(self.error_code)
        parts.append(self.message)
        return " ".join(part for part in parts if part)


class OandaRejected(OandaError):
    """The broker refused the request as invalid (400, 405, 416...): retrying cannot help."""


class OandaAuthError(OandaError):
    """Wrong token, or an account the token does not own (401, 403)."""


class OandaNotFound(OandaError):
    """No such order, trade, transaction or instrument (404)."""


class OandaRateLimited(OandaError):
    """Too many requests (429)."""


class OandaUnavailable(OandaError):
    """The broker is down or in maintenance (5xx)."""


class OandaConnectionError(OandaError):
    """No answer: connection refused or reset, or a timeout."""


class OandaProtocolError(OandaError):
    """An answer that does not fit the API: unexpected status or a body that is not JSON."""


RETRYABLE = (OandaRateLimited, OandaUnavailable, OandaConnectionError)

# The request classes the project builds, re-exported so no other module imports oandapyV20.
AccountSummary = accounts_endpoints.AccountSummary
AccountInstruments = accounts_endpoints.AccountInstruments
PricingStream = pricing_endpoints.PricingStream
TransactionsStream = transactions_endpoints.TransactionsStream
TransactionsSinceID = transactions_endpoints.TransactionsSinceID
TransactionDetails = transactions_endpoints.TransactionDetails
PricingInfo = pricing_endpoints.PricingInfo
OrderCreate = orders_endpoints.OrderCreate
OrderDetails = orders_endpoints.OrderDetails
OrderCancel = orders_endpoints.OrderCancel
OrdersPending = orders_endpoints.OrdersPending
OpenTrades = trades_endpoints.OpenTrades
TradeDetails = trades_endpoints.TradeDetails
TradeClose = trades_endpoints.TradeClose
TradeCRCDO = trades_endpoints.TradeCRCDO
OpenPositions = positions_endpoints.OpenPositions


@dataclass(frozen=True)
class OandaConfig:
    """Where and how to reach OANDA. ``api_url`` set means a custom host (the simulator)."""

    token: str = field(repr=False)
    account_id: str
    environment: str = PRACTICE
    api_url: str | None = None
    stream_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    # Below OANDA's 120 requests/s per IP, leaving room for the streams' reconnects.
    requests_per_second: float = 100.0
    max_attempts: int = 5
    backoff_base: float = 0.25
    backoff_cap: float = 8.0

    @classmethod
    def from_settings(cls) -> OandaConfig:
        for name in ("OANDA_TOKEN", "OANDA_ACCOUNT_ID"):
            if not getattr(settings, name):
                raise ImproperlyConfigured(f"{name} must be set (or {name}_FILE) to reach OANDA.")
        return cls(
            token=settings.OANDA_TOKEN,
            account_id=settings.OANDA_ACCOUNT_ID,
            environment=settings.OANDA_ENVIRONMENT,
            api_url=settings.OANDA_API_URL,
            stream_url=settings.OANDA_STREAM_URL,
            connect_timeout=settings.OANDA_CONNECT_TIMEOUT,
            read_timeout=settings.OANDA_READ_TIMEOUT,
            requests_per_second=settings.OANDA_REQUESTS_PER_SECOND,
        )

    def environment_name(self) -> str:
        """The oandapyV20 environment key, registering a custom host under its own name."""
        if not self.api_url:
            return self.environment
        api = self.api_url.rstrip("/")
        stream = (self.stream_url or self.api_url).rstrip("/")
        name = f"custom:{api}|{stream}"
        oanda_core.TRADING_ENVIRONMENTS[name] = {"api": api, "stream": stream}
        return name


class RateLimiter:
    """A token bucket shared by every client of the process (threads included)."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is free; returns the seconds waited."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1
            wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
        if wait:
            self.sleep(wait)
        return wait


_limiters: dict[float, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(rate: float) -> RateLimiter:
    with _limiters_lock:
        limiter = _limiters.get(rate)
        if limiter is None:
            limiter = _limiters[rate] = RateLimiter(rate)
        return limiter


def _body(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {"errorMessage": str(text)[:500]}
    return value if isinstance(value, dict) else {"errorMessage": str(value)[:500]}


def translate(error: Exception, endpoint: str) -> OandaError:
    """Turn what oandapyV20 and requests raise into the project's exception types."""
    if isinstance(error, OandaError):
        return error
    if isinstance(error, V20Error):
        status = int(error.code)
        body = _body(error.msg)
        message = str(body.get("errorMessage") or "no message")
        code = body.get("errorCode")
        kind: type[OandaError]
        if status == 429:
            kind = OandaRateLimited
        elif status >= 500:
            kind = OandaUnavailable
        elif status in (401, 403):
            kind = OandaAuthError
        elif status == 404:
            kind = OandaNotFound
        else:
            kind = OandaRejected
        return kind(message, status=status, error_code=code, endpoint=endpoint, body=body)
    if isinstance(error, requests.Timeout):
        return OandaConnectionError(f"timed out ({error.__class__.__name__})", endpoint=endpoint)
    if isinstance(error, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return OandaConnectionError(
            f"connection failed ({error.__class__.__name__})", endpoint=endpoint
        )
    if isinstance(error, ValueError):
        # oandapyV20 raises ValueError("v3/... POST 200") when the status is not the expected one,
        # and json raises ValueError on a body that is not JSON.
        return OandaProtocolError(f"unexpected answer ({error})", endpoint=endpoint)
    return OandaError(f"{error.__class__.__name__}: {error}", endpoint=endpoint)


class OandaClient:
    """Calls OANDA (or the simulator) for one account. Not thread-safe: one client per thread."""

    def __init__(
        self, config: OandaConfig | None = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.config = config or OandaConfig.from_settings()
        self.account_id = self.config.account_id
        self.limiter = shared_limiter(self.config.requests_per_second)
        self.sleep = sleep
        self._api = self._new_api()

    def _new_api(self) -> Any:
        api = oandapyV20.API(
            access_token=self.config.token,
            environment=self.config.environment_name(),
            request_params={"timeout": (self.config.connect_timeout, self.config.read_timeout)},
        )
        # requests reads the proxy variables of the whole environment on every request (3 ms a
        # call in bench/latency.py); without any proxy set there is nothing to find.
        if not any(name.lower().endswith("_proxy") for name in os.environ):
            api.client.trust_env = False
        return api

    def request(self, endpoint: Any, *, idempotent: bool | None = None) -> dict[str, Any]:
        """Send one oandapyV20 endpoint request and return the response body.

        GETs are retried on 429, 5xx and connection errors with capped exponential backoff and
        full jitter; anything else (an order, a close) is sent once, because the broker may have
        acted before the answer was lost: the caller looks the result up instead of re-sending.
        """
        retry = endpoint.method == "GET" if idempotent is None else idempotent
        name = f"{endpoint.method} {endpoint}"
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            try:
                response: dict[str, Any] = self._api.request(endpoint)
                return response
            except Exception as raw:
                error = translate(raw, name)
            if not retry or not isinstance(error, RETRYABLE) or attempt >= self.config.max_attempts:
                logger.warning(
                    "event=oanda_request_failed endpoint=%r attempt=%d status=%s code=%s error=%r",
                    name,
                    attempt,
                    error.status,
                    error.error_code,
                    error.message,
                )
                raise error
            delay = random.uniform(
                0, min(self.config.backoff_cap, self.config.backoff_base * 2**attempt)
            )
            logger.info(
                "event=oanda_retry endpoint=%r attempt=%d status=%s delay=%.3f",
                name,
                attempt,
                error.status,
                delay,
            )
            self.sleep(delay)

    def account_instruments(self) -> list[dict[str, Any]]:
        """The instruments the account may trade, as the broker describes them (OANDA's
        ``GET /v3/accounts/{id}/instruments``: name, type, pipLocation, displayPrecision,
        minimumTradeSize, maximumOrderUnits, marginRate, tradeUnitsPrecision, financing...)."""
        body = self.request(AccountInstruments(self.account_id))
        instruments = body.get("instruments")
        if not isinstance(instruments, list):
            raise OandaProtocolError(
                f"instruments={instruments!r}: expected a list of instruments",
                endpoint=f"GET {AccountInstruments(self.account_id)}",
                body=body,
            )
        return instruments

    def stream(self, endpoint: Any, *, read_timeout: float) -> Iterator[dict[str, Any] | BadLine]:
        """Yield the messages of a streaming endpoint (prices or transactions).

        oandapyV20's own stream generator dies on the first line that is not JSON, which would cost
        a reconnect for one bad line; this reads the lines itself (URL, headers and parameters still
        come from the endpoint and the client) and yields a ``BadLine`` for the caller to log and
        skip. ``read_timeout`` is the watchdog: no byte for that long (heartbeats included) raises
        ``OandaConnectionError``, as does an abrupt close; a clean end just ends the iteration.
        Each stream has its own HTTP session (requests.Session is not thread-safe).
        """
        name = f"STREAM {endpoint}"
        environment = oanda_core.TRADING_ENVIRONMENTS[self.config.environment_name()]
        url = f"{environment['stream']}/{endpoint}"
        self.limiter.acquire()
        with requests.Session() as session:
            session.headers.update(
                {
                    "Authorization": f"Bearer {self.config.token}",
                    "Accept-Encoding": "gzip, deflate",
                    "Content-Type": "application/json",
                }
            )
            try:
                response = session.get(
                    url,
                    params=getattr(endpoint, "params", None),
                    stream=True,
                    timeout=(self.config.connect_timeout, read_timeout),
                )
                if response.status_code >= 400:
                    raise V20Error(response.status_code, response.text)
                for line in response.iter_lines(chunk_size=None):
                    if not line:
                        continue
                    try:
                        message = json.loads(line)
                    except ValueError:
                        yield BadLine(line.decode("utf-8", "replace"), "not JSON")
                        continue
                    if isinstance(message, dict):
                        yield message
                    else:
                        yield BadLine(line.decode("utf-8", "replace"), "not a JSON object")
            except Exception as raw:
                raise translate(raw, name) from None


@dataclass(frozen=True)
class BadLine:
    """A line of a stream that could not be read, kept whole for the log."""

    raw: str
    reason: str


def instrument_candles(pair: str, params: dict[str, Any]) -> Any:
    """The candles request for one instrument (OANDA's ``GET .../instruments/{pair}/candles``)."""
    return instruments_endpoints.InstrumentsCandles(instrument=pair, params=params)
