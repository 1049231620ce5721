"""Health checks of every component in DESIGN.md section 8, each with a status and a reason.

A check reports ``ok``, ``degraded`` (working, but something needs attention) or ``down``, the
last time it succeeded, how long it took, and a sentence an operator can act on. Checks never
raise: a check that cannot even run is itself the finding. They read the components' own traces
(heartbeats, the streamer's published state) or probe them directly (the database, Redis, the
Celery broker, OANDA), and write nothing; the alert evaluation records their successes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, connection

from marketdata.models import Pair
from marketdata.oanda import AccountSummary, OandaClient, OandaConfig
from marketdata.selectors import broker_now, stream_state
from monitoring.models import Heartbeat
from septrader.config import CONFIG_KEYS
from septrader.selectors import config_get
from trading.market import market_status_at, pair_schedule, pairs_market_open
from trading.models import TradingState

logger = logging.getLogger(__name__)

Status = Literal["ok", "degraded", "down"]
STATUS_RANK: dict[str, int] = {"ok": 0, "degraded": 1, "down": 2}
QUEUES = ("qfh", "execution", "stream", "default")
NEW_YORK = ZoneInfo("America/New_York")
# How recent the trading schedule's own verdict (TradingState.market_checked_at) must be to be
# trusted over the built-in weekly window.
MARKET_VERDICT_MAX_AGE = timedelta(minutes=5)


@dataclass
class ComponentHealth:
    name: str
    status: Status
    reason: str
    last_success: datetime | None = None
    latency_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # False when the check could not find out (its source unreadable): alert rules neither raise
    # nor resolve on an unknown.
    known: bool = True

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["known"]
        data["last_success"] = self.last_success.isoformat() if self.last_success else None
        if self.latency_ms is not None:
            data["latency_ms"] = round(self.latency_ms, 2)
        return data


def overall_status(components: Iterable[ComponentHealth]) -> Status:
    worst: Status = "ok"
    for component in components:
        if STATUS_RANK[component.status] > STATUS_RANK[worst]:
            worst = component.status
    return worst


def config_value(key: str) -> Any:
    """A SystemConfig value, or its default when the database cannot be read."""

    try:
        return config_get(key)
    except DatabaseError:
        return CONFIG_KEYS[key].default


def _parse(moment: str | None) -> datetime | None:
    if not moment:
        return None
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _age(now: datetime, moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return f"{(now - moment).total_seconds():.0f} s ago"


class _Timer:
    def __enter__(self) -> _Timer:
        self.start = time.perf_counter()
        self.ms = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.ms = (time.perf_counter() - self.start) * 1000


# ----- the market schedule ------------------------------------------------------------------------


def weekly_market_open(moment: datetime) -> bool:
    """FX trades from Sunday 17:00 to Friday 17:00 New York time."""
    local = moment.astimezone(NEW_YORK)
    weekday, hour = local.weekday(), local.hour
    if weekday == 5:  # Saturday
        return False
    if weekday == 4:  # Friday
        return hour < 17
    if weekday == 6:  # Sunday
        return hour >= 17
    return True


def market_is_open(now: datetime) -> bool:
    """The trading schedule's recent verdict (TradingState, refreshed each minute by beat), else
    the schedule itself (trading/market.py), else the plain week; on the broker's clock at the
    local moment ``now``, like the verdict."""

    now = broker_now(now)

    try:
        state = TradingState.objects.filter(pk=1).first()
    except DatabaseError:
        state = None
    if (
        state is not None
        and state.market_checked_at is not None
        and now - state.market_checked_at <= MARKET_VERDICT_MAX_AGE
    ):
        return state.market_open
    try:
        return market_status_at(now).open
    except DatabaseError:
        # The schedule reads holidays and maintenance windows; without the database, the week.
        return weekly_market_open(now)


# ----- probes ------------------------------------------------------------------------------------


def _recorded_success(name: str) -> datetime | None:
    """When the alert evaluation last saw this check pass (None if unknown or unreadable)."""

    try:
        return (
            Heartbeat.objects.filter(component=f"check:{name}")
            .values_list("last_seen", flat=True)
            .first()
        )
    except DatabaseError:
        return None


def _probe(name: str, now: datetime, probe: Callable[[], str]) -> ComponentHealth:
    """Run a direct probe; ``probe`` returns a reason when it succeeds and raises when not."""
    with _Timer() as timer:
        try:
            reason = probe()
            error = None
        except Exception as raised:
            error = raised
    if error is None:
        return ComponentHealth(name, "ok", reason, now, timer.ms)
    text = f"{error.__class__.__name__}: {error}".strip()
    return ComponentHealth(name, "down", text[:300], _recorded_success(name), timer.ms)


def check_database(now: datetime) -> list[ComponentHealth]:
    def probe() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return f"{connection.vendor} answers"

    result = _probe("database", now, probe)
    if result.status == "down":
        # A broken connection stays broken in this thread until closed.
        with contextlib.suppress(DatabaseError):
            connection.close()
        result.reason = f"the database cannot be queried ({result.reason})"
    return [result]


def check_cache(now: datetime) -> list[ComponentHealth]:
    from django.core.cache import cache

    def probe() -> str:
        marker = now.isoformat()
        cache.set("monitoring:probe", marker, timeout=60)
        if cache.get("monitoring:probe") != marker:
            raise RuntimeError("a value written to the cache did not read back")
        return "the cache stores and returns values"

    result = _probe("cache", now, probe)
    if result.status == "down":
        location = settings.CACHES["default"].get("LOCATION", "")
        result.reason = f"the cache at {_without_password(str(location))} fails ({result.reason})"
    return [result]


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _broker_redis() -> Any:
    import redis

    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2
    )


def check_broker(now: datetime) -> list[ComponentHealth]:
    url = settings.CELERY_BROKER_URL
    scheme = urlsplit(url).scheme

    def probe() -> str:
        if scheme in {"redis", "rediss"}:
            _broker_redis().ping()
            return "the Celery broker (Redis) answers"
        if scheme == "filesystem":
            folder = Path(settings.CELERY_BROKER_DIR) / "queue"
            if not os.access(folder, os.W_OK):
                raise RuntimeError(f"{folder} is not writable")
            return "the filesystem broker's folder is writable"
        return f"the {scheme} broker needs no server"

    result = _probe("broker", now, probe)
    if result.status == "down":
        result.reason = f"the Celery broker {_without_password(url)} fails ({result.reason})"
    return [result]


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (Redis broker only; kombu's priority sub-lists)."""
    if urlsplit(settings.CELERY_BROKER_URL).scheme not in {"redis", "rediss"}:
        return {}
    client = _broker_redis()
    separator = "\x06\x16"
    depths = {}
    for queue in QUEUES:
        names = [queue, *(f"{queue}{separator}{step}" for step in (3, 6, 9))]
        depths[queue] = sum(int(client.llen(name)) for name in names)
    return depths


def _heartbeats() -> dict[str, Any]:

    return {beat.component: beat for beat in Heartbeat.objects.all()}


def check_heartbeats(now: datetime) -> list[ComponentHealth]:
    stale = timedelta(seconds=int(config_value("monitoring.heartbeat_stale_seconds")))
    names = [f"worker:{queue}" for queue in QUEUES] + ["beat"]
    with _Timer() as timer:
        try:
            beats = _heartbeats()
            error = None
        except DatabaseError as raised:
            beats, error = {}, raised
    results = []
    for name in names:
        if error is not None:
            results.append(
                ComponentHealth(
                    name, "down", f"heartbeats cannot be read ({error})", None, known=False
                )
            )
            continue
        beat = beats.get(name)
        what = "beat" if name == "beat" else f"no worker consumes the {name[7:]} queue"
        if beat is None:
            reason = (
                "beat has never sent a heartbeat"
                if name == "beat"
                else f"{what}: no heartbeat was ever received"
            )
            results.append(ComponentHealth(name, "down", reason, None, timer.ms))
        elif now - beat.last_seen > stale:
            reason = (
                f"beat is silent: last heartbeat {_age(now, beat.last_seen)}"
                if name == "beat"
                else f"{what}: last heartbeat {_age(now, beat.last_seen)} from "
                f"{beat.details.get('hostname', '?')}"
            )
            results.append(
                ComponentHealth(name, "down", reason, beat.last_seen, timer.ms, beat.details)
            )
        else:
            reason = f"heartbeat {_age(now, beat.last_seen)}"
            if beat.details.get("hostname"):
                reason += f" from {beat.details['hostname']}"
            results.append(
                ComponentHealth(name, "ok", reason, beat.last_seen, timer.ms, beat.details)
            )
    return results


def check_stream(now: datetime) -> list[ComponentHealth]:
    """The streamer's published state: itself, both streams, and each enabled pair's prices."""

    stale = timedelta(seconds=int(config_value("monitoring.stream_stale_seconds")))
    stale_price = timedelta(seconds=int(config_value("monitoring.stale_price_seconds")))
    with _Timer() as timer:
        try:
            state = stream_state()
            pairs = sorted(Pair.objects.filter(enabled=True).values_list("symbol", flat=True))
            error = None
        except Exception as raised:
            state, pairs, error = None, [], raised
    if error is not None:
        reason = f"the streamer's state cannot be read ({error.__class__.__name__}: {error})"
        return [
            ComponentHealth(name, "down", reason[:300], None, timer.ms, known=False)
            for name in ("streamer", "price_stream", "transaction_stream")
        ]
    if state is None:
        reason = "no streamer has published its state (manage.py stream_prices is not running)"
        # Without a streamer nothing is known about its streams: the streamer's alert says it.
        return [
            ComponentHealth(name, "down", reason, None, timer.ms, known=name == "streamer")
            for name in ("streamer", "price_stream", "transaction_stream")
        ]
    streamer = _streamer_health(now, state, stale)
    streamer_alive = streamer.status == "ok"
    return [
        streamer,
        *_stream_health(now, state, stale, streamer_alive=streamer_alive),
        *_pair_price_health(now, state, pairs, stale_price, streamer_alive=streamer_alive),
    ]


def _streamer_health(now: datetime, state: dict[str, Any], stale: timedelta) -> ComponentHealth:
    """The streamer itself: alive while it publishes its state."""
    updated = _parse(state.get("updated"))
    if updated is not None and now - updated <= stale:
        return ComponentHealth("streamer", "ok", f"state published {_age(now, updated)}", updated)
    return ComponentHealth(
        "streamer",
        "down",
        f"the streamer stopped publishing: last state {_age(now, updated)}",
        updated,
    )


def _stream_health(
    now: datetime, state: dict[str, Any], stale: timedelta, *, streamer_alive: bool
) -> list[ComponentHealth]:
    """The price and transaction streams from OANDA: alive while messages (heartbeats
    included) arrive."""
    results = []
    for name, key, what in (
        ("price_stream", "prices_alive_at", "price"),
        ("transaction_stream", "transactions_alive_at", "transaction"),
    ):
        alive = _parse(state.get(key))
        if alive is not None and now - alive <= stale and streamer_alive:
            results.append(ComponentHealth(name, "ok", f"last message {_age(now, alive)}", alive))
        else:
            results.append(
                ComponentHealth(
                    name,
                    "down",
                    f"the {what} stream from OANDA is silent: last message (heartbeats "
                    f"included) {_age(now, alive)}",
                    alive,
                    details={
                        "reconnects": state.get(f"{what}_reconnects"),
                        "backoff": state.get(f"{what}_backoff"),
                    },
                    # With the streamer itself gone, nothing is known about its streams.
                    known=streamer_alive,
                )
            )
    return results


def _pair_price_health(
    now: datetime,
    state: dict[str, Any],
    pairs: list[str],
    stale_price: timedelta,
    *,
    streamer_alive: bool,
) -> list[ComponentHealth]:
    """Each enabled pair's prices: recent enough while its market is open (bitcoin's prices
    must keep coming through the FX weekend)."""
    open_market = market_is_open(now)
    # A pair on the FX schedule follows the recorded FX verdict (as the market.closed alert
    # does); a metal or a crypto pair its own schedule.
    try:
        fx = pair_schedule(None)
        own_market = {
            pair: is_open
            for pair, is_open in pairs_market_open(pairs, broker_now(now)).items()
            if pair_schedule(pair) != fx
        }
    except DatabaseError:
        own_market = {}
    per_pair = state.get("pairs") or {}
    results = []
    for pair in pairs:
        received = _parse((per_pair.get(pair) or {}).get("last_price_received"))
        name = f"prices:{pair}"
        if not own_market.get(pair, open_market):
            results.append(
                ComponentHealth(name, "ok", "the market is closed", received, details={})
            )
        elif received is not None and now - received <= stale_price:
            results.append(
                ComponentHealth(name, "ok", f"last price {_age(now, received)}", received)
            )
        else:
            results.append(
                ComponentHealth(
                    name,
                    "degraded",
                    f"no {pair} price for longer than {stale_price.total_seconds():.0f} s on an "
                    f"open market: last price {_age(now, received)}",
                    received,
                    known=streamer_alive,
                )
            )
    return results


def check_oanda(now: datetime) -> list[ComponentHealth]:

    def probe() -> str:
        # One attempt with short timeouts: a health check must answer quickly, and a retry
        # would only hide the outage it is meant to show.
        config = replace(
            OandaConfig.from_settings(), connect_timeout=3.0, read_timeout=6.0, max_attempts=1
        )
        client = OandaClient(config)
        summary = client.request(AccountSummary(config.account_id))
        account = summary.get("account", {})
        return f"account {config.account_id} answers, NAV {account.get('NAV', '?')}"

    result = _probe("oanda", now, probe)
    if result.status == "down":
        result.reason = f"OANDA cannot be reached ({result.reason})"
    return [result]


def _data_path() -> Path:
    path = Path(settings.DATA_DIR)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(now: datetime) -> list[ComponentHealth]:
    limit = int(config_value("monitoring.disk_percent"))
    path = _data_path()
    usage = shutil.disk_usage(path)
    percent = 100.0 * usage.used / usage.total if usage.total else 0.0
    details = {"path": str(path), "percent": round(percent, 1), "free_bytes": usage.free}
    if percent > limit:
        reason = f"disk {percent:.1f}% full at {path} (limit {limit}%), {usage.free >> 20} MiB free"
        return [
            ComponentHealth("disk", "degraded", reason, _recorded_success("disk"), None, details)
        ]
    return [ComponentHealth("disk", "ok", f"disk {percent:.1f}% full", now, None, details)]


def memory_percent() -> float | None:
    """Memory in use, % of the total (Linux /proc/meminfo; None elsewhere)."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0]) if rest.split() else 0
    total, available = values.get("MemTotal"), values.get("MemAvailable")
    if not total or available is None:
        return None
    return 100.0 * (total - available) / total


def check_memory(now: datetime) -> list[ComponentHealth]:
    limit = int(config_value("monitoring.memory_percent"))
    percent = memory_percent()
    if percent is None:
        return [ComponentHealth("memory", "ok", "memory is not measured on this system", now)]
    details = {"percent": round(percent, 1)}
    if percent > limit:
        return [
            ComponentHealth(
                "memory",
                "degraded",
                f"memory {percent:.1f}% used (limit {limit}%)",
                _recorded_success("memory"),
                None,
                details,
            )
        ]
    return [ComponentHealth("memory", "ok", f"memory {percent:.1f}% used", now, None, details)]


# The checks in the order they are shown; the key is what ``--component`` selects.
CHECKS: dict[str, Callable[[datetime], list[ComponentHealth]]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "workers": check_heartbeats,
    "stream": check_stream,
    "oanda": check_oanda,
    "disk": check_disk,
    "memory": check_memory,
}


def _group_of(name: str) -> str:
    """The check that reports on a component name (or a group of them)."""
    if name in CHECKS:
        return name
    prefix = name.split(":")[0]
    if prefix in {"worker", "beat"}:
        return "workers"
    if prefix in {"prices", "streamer", "price_stream", "transaction_stream"}:
        return "stream"
    raise KeyError(name)


def component_names() -> list[str]:
    """What ``--component`` accepts."""
    return [
        *CHECKS,
        "beat",
        *(f"worker:{queue}" for queue in QUEUES),
        "streamer",
        "price_stream",
        "transaction_stream",
        "prices",
        "prices:<PAIR>",
    ]


def run_checks(
    *, now: datetime | None = None, components: Iterable[str] | None = None
) -> list[ComponentHealth]:
    """Run every check, or only those reporting on the named components (``KeyError`` for a
    name no check reports on)."""
    moment = now or datetime.now(UTC)
    wanted = set(components) if components is not None else None
    groups = {_group_of(name) for name in wanted} if wanted is not None else set(CHECKS)
    results: list[ComponentHealth] = []
    for group, check in CHECKS.items():
        if group not in groups:
            continue
        try:
            found = check(moment)
        except Exception as error:
            logger.exception("event=health_check_crashed check=%s", group)
            found = [
                ComponentHealth(
                    group, "down", f"the check itself failed: {error!r}"[:300], known=False
                )
            ]
        if wanted is None or group in wanted:
            results.extend(found)
        else:
            results.extend(
                item for item in found if item.name in wanted or item.name.split(":")[0] in wanted
            )
    return results
