"""The HTTP/1.1 server: OANDA's /v3 routes, both streams and the /__sim control endpoints.

It is a small hand-written HTTP/1.1 server on asyncio streams rather than `http.server`, because
one event-loop thread lets the broker run without locks and parses keep-alive requests several
times faster than `BaseHTTPRequestHandler` (see bench/oandasim.py for the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from oandasim.broker import Body, Broker
from oandasim.candles import (
    GRANULARITY_SECONDS,
    CandleQuery,
    CandleRequestError,
    build_candles,
    minute_candles_json,
)
from oandasim.clock import ClockError
from oandasim.instruments import INSTRUMENTS
from oandasim.timeutil import TimeFormatError, format_time, format_unix, parse_time

logger = logging.getLogger("oandasim")

REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
UNAUTHORIZED = {"errorMessage": "Insufficient authorization to perform request."}
# OANDA allows 20 active streams per IP address and rejects more.
MAX_STREAMS = 20


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    host: str = ""

    def json(self) -> Body:
        if not self.body.strip():
            return {}
        data = json.loads(self.body)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data


@dataclass
class StreamReply:
    """Tells the connection loop to hand the socket to a stream coroutine."""

    run: Callable[[asyncio.StreamWriter, StreamState], Awaitable[None]]
    kind: str


@dataclass
class StreamState:
    kind: str
    action: str | None = None  # "drop" or "end", set by the fault endpoint
    unix_times: bool = False
    # Raw lines the fault endpoint asked to send as they are (malformed data from the broker).
    raw_lines: list[str] = field(default_factory=list)


RFC3339_NANOS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def unix_times(value: Any) -> Any:
    """Rewrite every RFC3339 time in a response as UNIX seconds, for Accept-Datetime-Format."""
    if isinstance(value, dict):
        return {key: unix_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unix_times(item) for item in value]
    if isinstance(value, str) and RFC3339_NANOS.match(value):
        return format_unix(parse_time(value))
    return value


@dataclass
class Faults:
    status: int | None = None
    remaining: int = 0
    latency: float = 0.0
    silent_until: dict[str, float] = field(default_factory=dict)
    # Candle responses still to corrupt (high and low of the first candle swapped).
    corrupt_candles: int = 0

    def to_wire(self, now: float) -> Body:
        return {
            "status": self.status,
            "remaining": self.remaining,
            "latency": self.latency,
            "silent": sorted(kind for kind, until in self.silent_until.items() if until > now),
            "corrupt_candles": self.corrupt_candles,
        }


@dataclass
class StreamStats:
    """What the pricing streams have sent since start (GET /__sim/stats), for load tests."""

    prices_sent: int = 0
    price_batches: int = 0
    # Batches that left more than one interval after they were due: the loop fell behind.
    late_batches: int = 0
    requests: int = 0

    def to_wire(self) -> Body:
        return {
            "prices_sent": self.prices_sent,
            "price_batches": self.price_batches,
            "late_batches": self.late_batches,
            "requests": self.requests,
        }


class EncodedBody(dict[str, Any]):
    """A reply body already written as JSON bytes (the candles of a backfill page)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data


Reply = tuple[int, Body] | StreamReply
Handler = Callable[..., Reply]


@dataclass
class Settings:
    token: str
    heartbeat: float = 5.0
    stream_interval: float = 0.25
    # Load tests: every batch carries every tradeable price, as a busy market would.
    stream_unchanged: bool = False
    rate_limit: int = 120
    state_file: Path | None = None


class SimServer:
    def __init__(self, broker: Broker, settings: Settings) -> None:
        self.broker = broker
        self.settings = settings
        self.faults = Faults()
        self.stats = StreamStats()
        self.streams: list[StreamState] = []
        self.request_times: deque[float] = deque()
        self.server: asyncio.Server | None = None
        self.port = 0
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = []
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._build_routes()

    # ===== lifecycle ============================================================================

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._connection, host, port, backlog=256)
        self.port = self.server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        self._stopping.set()
        for stream in self.streams:
            stream.action = "end"
        if self.server is not None:
            self.server.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await asyncio.sleep(min(0.3, self.settings.stream_interval * 2 + 0.05))
        self.broker.sync()
        self.save_state()

    async def _tick(self) -> None:
        """Advance the broker along the price path even when nobody is calling."""
        while True:
            await asyncio.sleep(0.05)
            try:
                self.broker.sync()
                if self.broker.dirty:
                    self.save_state()
            except Exception:
                logger.exception("the background tick failed")

    def save_state(self) -> None:
        """Write the account atomically: a temporary file in the same folder, then a rename."""
        self.broker.dirty = False
        path = self.settings.state_file
        if path is None:
            return
        payload = json.dumps(self.broker.to_state(), separators=(",", ":"))
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(handle, "w") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)

    # ===== HTTP =================================================================================

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                url = urlsplit(target)
                request = Request(
                    method=method.upper(),
                    path=unquote(url.path),
                    params=dict(parse_qsl(url.query, keep_blank_values=True)),
                    headers=headers,
                    body=body,
                    host=headers.get("host", ""),
                )
                keep_alive = (
                    version.upper() == "HTTP/1.1"
                    and headers.get("connection", "").lower() != "close"
                )
                reply = self._dispatch(request)
                if self.faults.latency and request.path.startswith("/v3"):
                    await asyncio.sleep(self.faults.latency)
                unix = headers.get("accept-datetime-format", "").upper() == "UNIX"
                if isinstance(reply, StreamReply):
                    if len(self.streams) < MAX_STREAMS:
                        await self._run_stream(writer, reply, unix)
                        return
                    reply = 429, {"errorMessage": "Too many active streams: at most 20"}
                status, payload = reply
                if isinstance(payload, EncodedBody):
                    data = payload.data
                else:
                    if unix:
                        payload = unix_times(payload)
                    data = json.dumps(payload, separators=(",", ":")).encode()
                writer.write(
                    (
                        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                        "Content-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n"
                        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
                    ).encode()
                    + data
                )
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            # A cancelled connection is one still open at shutdown; ending quietly is right.
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _dispatch(self, request: Request) -> Reply:
        is_v3 = request.path.startswith("/v3/")
        if is_v3:
            self.stats.requests += 1
            limited = self._rate_limited()
            if limited is not None:
                return limited
            if self.faults.remaining > 0 and self.faults.status is not None:
                self.faults.remaining -= 1
                return self.faults.status, {"errorMessage": "Injected fault"}
        if request.headers.get("authorization") != f"Bearer {self.settings.token}":
            return 401, UNAUTHORIZED
        for pattern, methods in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                return 405, {"errorMessage": f"Method {request.method} not allowed"}
            arguments = match.groupdict()
            account = arguments.pop("account", None)
            if account is not None and account != self.broker.account_id:
                return 401, UNAUTHORIZED
            try:
                return handler(request, **arguments)
            except json.JSONDecodeError:
                return 400, {"errorMessage": "The request body is not valid JSON"}
            except (ValueError, TimeFormatError) as error:
                return 400, {"errorMessage": f"Invalid request: {error}"}
            except Exception:
                traceback.print_exc(file=sys.stderr)
                return 500, {"errorMessage": "Internal server error"}
        return 404, {"errorMessage": f"Unknown path {request.path}"}

    def _rate_limited(self) -> Reply | None:
        limit = self.settings.rate_limit
        if limit <= 0:
            return None
        now = time.monotonic()
        times = self.request_times
        while times and times[0] <= now - 1.0:
            times.popleft()
        if len(times) >= limit:
            return 429, {"errorMessage": "Requests are being rate limited: at most 120 per second"}
        times.append(now)
        return None

    # ===== routes ===============================================================================

    def _build_routes(self) -> None:
        account = r"/v3/accounts/(?P<account>[^/]+)"
        table: list[tuple[str, dict[str, Handler]]] = [
            (r"/v3/accounts", {"GET": self.accounts}),
            (account, {"GET": self.account_details}),
            (account + "/summary", {"GET": self.account_summary}),
            (account + "/instruments", {"GET": self.account_instruments}),
            (r"/v3/instruments/(?P<name>[^/]+)/candles", {"GET": self.candles}),
            (account + r"/instruments/(?P<name>[^/]+)/candles", {"GET": self.candles}),
            (account + "/pricing", {"GET": self.pricing}),
            (account + "/pricing/stream", {"GET": self.pricing_stream}),
            (account + "/orders", {"GET": self.orders, "POST": self.order_create}),
            (account + "/pendingOrders", {"GET": self.pending_orders}),
            (
                account + r"/orders/(?P<spec>[^/]+)",
                {"GET": self.order_details, "PUT": self.order_replace},
            ),
            (account + r"/orders/(?P<spec>[^/]+)/cancel", {"PUT": self.order_cancel}),
            (account + "/trades", {"GET": self.trades}),
            (account + "/openTrades", {"GET": self.open_trades}),
            (account + r"/trades/(?P<spec>[^/]+)", {"GET": self.trade_details}),
            (account + r"/trades/(?P<spec>[^/]+)/close", {"PUT": self.trade_close}),
            (account + r"/trades/(?P<spec>[^/]+)/orders", {"PUT": self.trade_orders}),
            (account + "/positions", {"GET": self.positions}),
            (account + "/openPositions", {"GET": self.open_positions}),
            (account + r"/positions/(?P<name>[^/]+)", {"GET": self.position_details}),
            (account + r"/positions/(?P<name>[^/]+)/close", {"PUT": self.position_close}),
            (account + "/transactions", {"GET": self.transactions}),
            (account + "/transactions/idrange", {"GET": self.transactions_range}),
            (account + "/transactions/sinceid", {"GET": self.transactions_since}),
            (account + "/transactions/stream", {"GET": self.transactions_stream}),
            (account + r"/transactions/(?P<number>\d+)", {"GET": self.transaction_details}),
            (r"/__sim/clock", {"GET": self.clock_get, "POST": self.clock_set}),
            (r"/__sim/stats", {"GET": self.stats_get}),
            (
                r"/__sim/fault",
                {"GET": self.fault_get, "POST": self.fault_set, "DELETE": self.fault_clear},
            ),
        ]
        self._routes = [(re.compile(pattern), methods) for pattern, methods in table]

    # ----- accounts ----------------------------------------------------------------------------

    def _sync(self) -> float:
        now = self.broker.clock.now()
        self.broker.sync(now)
        return now

    def _current(self, key: str, value: Any) -> Reply:
        """A read's answer: the value, and the last transaction it reflects."""
        return 200, {key: value, "lastTransactionID": self.broker.last_transaction_id}

    def accounts(self, request: Request) -> Reply:
        return 200, {"accounts": [{"id": self.broker.account_id, "tags": []}]}

    def account_details(self, request: Request) -> Reply:
        self._sync()
        return self._current("account", self.broker.account_details())

    def account_summary(self, request: Request) -> Reply:
        self._sync()
        return self._current("account", self.broker.account_summary())

    def account_instruments(self, request: Request) -> Reply:
        names = self.broker.listed_instruments()
        if request.params.get("instruments"):
            wanted = request.params["instruments"].split(",")
            unknown = [name for name in wanted if name not in names]
            if unknown:
                return 400, {"errorMessage": "Invalid value specified for 'instruments'"}
            names = wanted
        return self._current("instruments", [self.broker.instrument_wire(name) for name in names])

    # ----- market data -------------------------------------------------------------------------

    def candles(self, request: Request, name: str) -> Reply:
        series = self.broker.market.series.get(name)
        if series is None:
            return 400, {"errorMessage": "Invalid value specified for 'instrument'"}
        now = self.broker.clock.now()
        try:
            query = CandleQuery.parse(request.params, now)
        except CandleRequestError as error:
            return 400, {"errorMessage": str(error)}
        unix = request.headers.get("accept-datetime-format", "").upper() == "UNIX"
        if (
            GRANULARITY_SECONDS[query.granularity] == 60
            and query.start is not None
            and query.start <= now
            and not (unix or self.faults.corrupt_candles > 0)
        ):
            # A backfill's page: written as JSON text directly, the same bytes as json.dumps.
            text = minute_candles_json(series, query, now)
            head = json.dumps(
                {"instrument": name, "granularity": query.granularity}, separators=(",", ":")
            )
            return 200, EncodedBody(f'{head[:-1]},"candles":{text}}}'.encode())
        candles = build_candles(series, query, now)
        if self.faults.corrupt_candles > 0 and candles:
            self.faults.corrupt_candles -= 1
            candles = [_corrupted(candles[0]), *candles[1:]]
        return 200, {"instrument": name, "granularity": query.granularity, "candles": candles}

    def _instrument_list(self, request: Request) -> list[str] | None:
        raw = request.params.get("instruments", "")
        names = [name for name in raw.split(",") if name]
        if not names or any(name not in self.broker.market.series for name in names):
            return None
        return names

    def pricing(self, request: Request) -> Reply:
        names = self._instrument_list(request)
        if names is None:
            return 400, {"errorMessage": "Invalid value specified for 'instruments'"}
        now = self._sync()
        since = parse_time(request.params["since"]) if request.params.get("since") else None
        prices = []
        for name in names:
            price = self.broker.price_wire(name, now)
            if since is not None and parse_time(price["time"]) <= since:
                continue
            gain, loss = self.broker.conversion(INSTRUMENTS[name].quote)
            price["quoteHomeConversionFactors"] = {
                "positiveUnits": str(gain.quantize(Decimal("0.0000000001"))),
                "negativeUnits": str(loss.quantize(Decimal("0.0000000001"))),
            }
            prices.append(price)
        body: Body = {"time": format_time(now), "prices": prices}
        if request.params.get("includeHomeConversions", "").lower() == "true":
            currencies = sorted({c for n in self.broker.market.series for c in n.split("_")})
            conversions = []
            for currency in currencies:
                gain, loss = self.broker.conversion(currency)
                conversions.append(
                    {
                        "currency": currency,
                        "accountGain": str(gain.quantize(Decimal("0.0000000001"))),
                        "accountLoss": str(loss.quantize(Decimal("0.0000000001"))),
                        "positionValue": str(((gain + loss) / 2).quantize(Decimal("0.0000000001"))),
                    }
                )
            body["homeConversions"] = conversions
        return 200, body

    def pricing_stream(self, request: Request) -> Reply:
        names = self._instrument_list(request)
        if names is None:
            return 400, {"errorMessage": "Invalid value specified for 'instruments'"}
        snapshot = request.params.get("snapshot", "true").lower() != "false"

        async def run(writer: asyncio.StreamWriter, state: StreamState) -> None:
            loop = asyncio.get_running_loop()
            last: dict[str, tuple[str, str, bool]] = {}
            next_heartbeat = loop.time() + self.settings.heartbeat
            interval = self.settings.stream_interval
            # Batches are due on a fixed schedule (not "interval after the last one finished"), so
            # the stream holds its rate while building a batch takes time, as OANDA's does.
            due = loop.time()
            first = True
            while True:
                if await self._stream_interrupted(writer, state):
                    return
                lines: list[Body] = []
                silent = self.faults.silent_until.get("pricing", 0.0) > loop.time()
                if not silent:
                    now = self._sync()
                    for name in names:
                        price = self.broker.price_wire(name, now)
                        key = (
                            price["bids"][0]["price"],
                            price["asks"][0]["price"],
                            price["tradeable"],
                        )
                        previous = last.get(name)
                        changed = (
                            previous is None
                            or previous != key
                            or (self.settings.stream_unchanged and price["tradeable"])
                        )
                        # While closed, only the first price (or the close itself) is sent.
                        if changed and (price["tradeable"] or previous is None or previous[2]):
                            if not first or snapshot:
                                lines.append(price)
                            last[name] = key
                    if loop.time() >= next_heartbeat:
                        lines.append({"type": "HEARTBEAT", "time": format_time(now)})
                        next_heartbeat = loop.time() + self.settings.heartbeat
                    first = False
                if state.raw_lines:
                    raw = "".join(line + "\n" for line in state.raw_lines).encode()
                    state.raw_lines.clear()
                    writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                if lines:
                    await self._write_lines(writer, lines, state)
                    self.stats.price_batches += 1
                    self.stats.prices_sent += sum(
                        1 for line in lines if line.get("type") == "PRICE"
                    )
                due += interval
                behind = loop.time() - due
                if behind > interval:
                    # Too far behind to catch up without a burst: start the schedule again.
                    self.stats.late_batches += 1
                    due = loop.time()
                await asyncio.sleep(max(0.0, due - loop.time()))

        return StreamReply(run, "pricing")

    # ----- orders ------------------------------------------------------------------------------

    def order_create(self, request: Request) -> Reply:
        reply = self.broker.create_order(request.json())
        self._after_write()
        return reply

    def _after_write(self) -> None:
        if self.broker.dirty and self.settings.state_file is not None:
            self.save_state()

    @staticmethod
    def _count(request: Request, default: int, maximum: int) -> int:
        count = int(request.params.get("count", default))
        if not 1 <= count <= maximum:
            raise ValueError("Invalid value specified for 'count'")
        return count

    def _filter(self, request: Request, items: list[Any], state_default: str) -> list[Any]:
        state = request.params.get("state", state_default)
        if state != "ALL":
            items = [item for item in items if item.state == state]
        if request.params.get("instrument"):
            items = [item for item in items if item.instrument == request.params["instrument"]]
        if request.params.get("ids"):
            wanted = {int(i) for i in request.params["ids"].split(",") if i}
            items = [item for item in items if item.id in wanted]
        if request.params.get("beforeID"):
            before = int(request.params["beforeID"])
            items = [item for item in items if item.id < before]
        items = sorted(items, key=lambda item: item.id, reverse=True)
        return items[: self._count(request, 50, 500)]

    def orders(self, request: Request) -> Reply:
        self._sync()
        orders = self._filter(request, list(self.broker.orders.values()), "PENDING")
        return self._current("orders", [self.broker.order_wire(order) for order in orders])

    def pending_orders(self, request: Request) -> Reply:
        self._sync()
        orders = sorted(self.broker.pending_orders(), key=lambda order: order.id, reverse=True)
        return self._current("orders", [self.broker.order_wire(order) for order in orders])

    def order_details(self, request: Request, spec: str) -> Reply:
        self._sync()
        order = self.broker.find_order(spec)
        if order is None:
            return 404, {
                "errorCode": "NO_SUCH_ORDER",
                "errorMessage": "The Order specified does not exist",
            }
        return self._current("order", self.broker.order_wire(order))

    def order_replace(self, request: Request, spec: str) -> Reply:
        reply = self.broker.replace_order(spec, request.json())
        self._after_write()
        return reply

    def order_cancel(self, request: Request, spec: str) -> Reply:
        reply = self.broker.cancel_order(spec)
        self._after_write()
        return reply

    # ----- trades and positions ----------------------------------------------------------------

    def trades(self, request: Request) -> Reply:
        self._sync()
        trades = self._filter(request, list(self.broker.trades.values()), "OPEN")
        return self._current("trades", [self.broker.trade_wire(trade) for trade in trades])

    def open_trades(self, request: Request) -> Reply:
        self._sync()
        trades = sorted(self.broker.open_trades(), key=lambda trade: trade.id, reverse=True)
        return self._current("trades", [self.broker.trade_wire(trade) for trade in trades])

    def trade_details(self, request: Request, spec: str) -> Reply:
        self._sync()
        trade = self.broker.find_trade(spec)
        if trade is None:
            return 404, {
                "errorCode": "NO_SUCH_TRADE",
                "errorMessage": "The Trade specified does not exist",
            }
        return self._current("trade", self.broker.trade_wire(trade))

    def trade_close(self, request: Request, spec: str) -> Reply:
        reply = self.broker.close_trade(spec, request.json())
        self._after_write()
        return reply

    def trade_orders(self, request: Request, spec: str) -> Reply:
        reply = self.broker.set_dependent_orders(spec, request.json())
        self._after_write()
        return reply

    def positions(self, request: Request) -> Reply:
        self._sync()
        return self._current("positions", self.broker.positions(open_only=False))

    def open_positions(self, request: Request) -> Reply:
        self._sync()
        return self._current("positions", self.broker.positions(open_only=True))

    def position_details(self, request: Request, name: str) -> Reply:
        if name not in self.broker.market.series:
            return 404, {"errorMessage": "Invalid value specified for 'instrument'"}
        self._sync()
        return self._current("position", self.broker.position(name))

    def position_close(self, request: Request, name: str) -> Reply:
        reply = self.broker.close_position(name, request.json())
        self._after_write()
        return reply

    # ----- transactions ------------------------------------------------------------------------

    def _transactions_between(self, first: int, last: int, types: str | None) -> list[Body]:
        selected = self.broker.transactions[max(first, 1) - 1 : max(last, 0)]
        if types:
            wanted = set(types.split(","))
            selected = [t for t in selected if t["type"] in wanted]
        return selected

    def transactions(self, request: Request) -> Reply:
        now = self._sync()
        start = parse_time(request.params["from"]) if "from" in request.params else 0.0
        end = parse_time(request.params["to"]) if "to" in request.params else now
        page_size = int(request.params.get("pageSize", 100))
        if not 1 <= page_size <= 1000:
            return 400, {"errorMessage": "Invalid value specified for 'pageSize'"}
        ids = [
            int(t["id"])
            for t in self.broker.transactions
            if start <= parse_time(t["time"]) <= end
            and (not request.params.get("type") or t["type"] in request.params["type"].split(","))
        ]
        base = f"http://{request.host}/v3/accounts/{self.broker.account_id}/transactions/idrange"
        pages = [
            f"{base}?from={ids[i]}&to={ids[min(i + page_size, len(ids)) - 1]}"
            for i in range(0, len(ids), page_size)
        ]
        body: Body = {
            "from": format_time(start if "from" in request.params else self.broker.created_time),
            "to": format_time(end),
            "pageSize": page_size,
            "count": len(ids),
            "pages": pages,
            "lastTransactionID": self.broker.last_transaction_id,
        }
        if request.params.get("type"):
            body["type"] = request.params["type"].split(",")
        return 200, body

    def transactions_range(self, request: Request) -> Reply:
        if "from" not in request.params or "to" not in request.params:
            return 400, {"errorMessage": "The request was missing required data"}
        first, last = int(request.params["from"]), int(request.params["to"])
        if first > last:
            return 416, {"errorMessage": "Invalid transaction range"}
        self._sync()
        return self._current(
            "transactions", self._transactions_between(first, last, request.params.get("type"))
        )

    def transactions_since(self, request: Request) -> Reply:
        if "id" not in request.params:
            return 400, {"errorMessage": "The request was missing required data"}
        first = int(request.params["id"]) + 1
        self._sync()
        return self._current(
            "transactions",
            self._transactions_between(
                first, len(self.broker.transactions), request.params.get("type")
            ),
        )

    def transaction_details(self, request: Request, number: str) -> Reply:
        index = int(number)
        if not 1 <= index <= len(self.broker.transactions):
            return 404, {"errorMessage": "The Transaction specified does not exist"}
        return self._current("transaction", self.broker.transactions[index - 1])

    def transactions_stream(self, request: Request) -> Reply:
        async def run(writer: asyncio.StreamWriter, state: StreamState) -> None:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Body] = asyncio.Queue()
            self.broker.listeners.append(queue.put_nowait)
            next_heartbeat = loop.time() + self.settings.heartbeat
            try:
                while True:
                    if await self._stream_interrupted(writer, state):
                        return
                    timeout = max(
                        0.0, min(self.settings.stream_interval, next_heartbeat - loop.time())
                    )
                    with contextlib.suppress(TimeoutError):
                        first = await asyncio.wait_for(queue.get(), timeout)
                        lines = [first]
                        while not queue.empty():
                            lines.append(queue.get_nowait())
                        if self.faults.silent_until.get("transactions", 0.0) <= loop.time():
                            await self._write_lines(writer, lines, state)
                    silent = self.faults.silent_until.get("transactions", 0.0) > loop.time()
                    if loop.time() >= next_heartbeat:
                        next_heartbeat = loop.time() + self.settings.heartbeat
                        if not silent:
                            heartbeat = {
                                "type": "HEARTBEAT",
                                "lastTransactionID": self.broker.last_transaction_id,
                                "time": format_time(self.broker.clock.now()),
                            }
                            await self._write_lines(writer, [heartbeat], state)
            finally:
                self.broker.listeners.remove(queue.put_nowait)

        return StreamReply(run, "transactions")

    # ----- streams -----------------------------------------------------------------------------

    async def _run_stream(
        self, writer: asyncio.StreamWriter, reply: StreamReply, unix: bool
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        state = StreamState(reply.kind, unix_times=unix)
        self.streams.append(state)
        try:
            await writer.drain()
            await reply.run(writer, state)
        except (ConnectionError, OSError):
            # The client hung up (oandapyV20's terminate() just drops the socket).
            pass
        finally:
            self.streams.remove(state)

    async def _stream_interrupted(self, writer: asyncio.StreamWriter, state: StreamState) -> bool:
        if writer.is_closing():
            return True
        if state.action == "drop":
            # An abrupt close: no terminating chunk, so the client sees a broken chunked body.
            writer.transport.abort()
            return True
        if state.action == "end":
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        return False

    @staticmethod
    async def _write_lines(
        writer: asyncio.StreamWriter, lines: list[Body], state: StreamState
    ) -> None:
        if state.unix_times:
            lines = [unix_times(line) for line in lines]
        payload = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
        writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        await writer.drain()

    # ----- /__sim controls ---------------------------------------------------------------------

    def _clock_wire(self) -> Body:
        clock = self.broker.clock
        return {"time": format_time(clock.now()), "speed": clock.speed, "paused": clock.paused}

    def clock_get(self, request: Request) -> Reply:
        return 200, self._clock_wire()

    def stats_get(self, request: Request) -> Reply:
        return 200, {**self.stats.to_wire(), "clock": self._clock_wire()}

    def clock_set(self, request: Request) -> Reply:
        """Pause, resume, change speed, or jump forward; triggers on the way are processed."""
        data = request.json()
        clock = self.broker.clock
        self.broker.sync()
        try:
            if "speed" in data:
                clock.set_speed(float(data["speed"]))
            if "time" in data:
                target = parse_time(str(data["time"]))
                self._advance_to(target)
            if "advance" in data:
                self._advance_to(clock.now() + float(data["advance"]))
            if data.get("pause") is True:
                clock.pause()
            elif data.get("pause") is False:
                clock.resume()
        except ClockError as error:
            return 400, {"errorMessage": str(error)}
        self._after_write()
        return 200, self._clock_wire()

    def _advance_to(self, target: float) -> None:
        clock = self.broker.clock
        paused = clock.paused
        clock.jump_to(target)
        if paused:
            clock.pause()
        self.broker.sync(clock.now())

    def fault_get(self, request: Request) -> Reply:
        return 200, self.faults.to_wire(asyncio.get_running_loop().time())

    def fault_set(self, request: Request) -> Reply:
        data = request.json()
        loop_time = asyncio.get_running_loop().time()
        if data.get("clear"):
            return self.fault_clear(request)
        if "status" in data:
            status = int(data["status"])
            if status not in (429, 500, 503):
                return 400, {"errorMessage": "status must be 429, 500 or 503"}
            self.faults.status = status
            self.faults.remaining = int(data.get("count", 1))
        if "latency" in data:
            self.faults.latency = float(data["latency"])
        if "corrupt_candles" in data:
            self.faults.corrupt_candles = int(data["corrupt_candles"])
        if "stream" in data:
            kind = data["stream"]
            if kind not in ("pricing", "transactions"):
                return 400, {"errorMessage": "stream must be pricing or transactions"}
            action = data.get("action", "silence")
            if action == "silence":
                seconds = float(data.get("seconds", 1e9))
                self.faults.silent_until[kind] = loop_time + seconds
            elif action == "resume":
                self.faults.silent_until.pop(kind, None)
            elif action in ("drop", "end"):
                for stream in self.streams:
                    if stream.kind == kind:
                        stream.action = action
            elif action == "inject" and kind == "pricing":
                raw_lines = [str(line) for line in data.get("lines", [])]
                for stream in self.streams:
                    if stream.kind == kind:
                        stream.raw_lines.extend(raw_lines)
            else:
                return 400, {
                    "errorMessage": "action must be silence, resume, drop, end or inject (pricing)"
                }
        return 200, self.faults.to_wire(loop_time)

    def fault_clear(self, request: Request) -> Reply:
        self.faults = Faults()
        return 200, self.faults.to_wire(asyncio.get_running_loop().time())


def _corrupted(candle: Body) -> Body:
    """The same candle with high and low swapped in every price component (high < low)."""
    broken = dict(candle)
    for component in ("mid", "bid", "ask"):
        prices = candle.get(component)
        if isinstance(prices, dict):
            broken[component] = {**prices, "h": prices["l"], "l": prices["h"]}
    return broken
