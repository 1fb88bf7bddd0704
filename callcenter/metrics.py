"""Prometheus metrics, served on a port of their own (``[metrics] port``), never on the API's.

What is counted where it happens costs nothing per AMI event: HTTP requests (the middleware
in callcenter/api/observe.py), and per committed AMI batch its size and the wait of its oldest
event. The rest is read when Prometheus scrapes: the listener's own counters and spool, and
from the database the calls by outcome, the calls in progress and locked-out users, so every
replica and listener reports the same truth about calls.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from callcenter.db import utcnow
from callcenter.ivr.models import IvrRun
from callcenter.models import FINAL_OUTCOMES, Call, LoginFailure, Outcome
from callcenter.notify.models import Notification
from callcenter.settings import MetricsSettings

if TYPE_CHECKING:
    from callcenter.ami.batch import Batch
    from callcenter.ami.listener import Listener
    from callcenter.ivr.server import FastAgiServer

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "siaga112_http_requests",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "siaga112_http_request_duration_seconds",
    "HTTP request time until the response is sent, by route template",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOGIN_FAILURES = Counter("siaga112_login_failures", "Refused logins (wrong password, locked out)")
AMI_BATCH_SIZE = Histogram(
    "siaga112_ami_batch_events",
    "AMI events committed per batch",
    ["pbx"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000),
)
AMI_COMMIT_LATENCY = Histogram(
    "siaga112_ami_event_commit_latency_seconds",
    "From an AMI event's arrival to the commit of its batch (the oldest event of each batch)",
    ["pbx"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

LIVE_OUTCOMES = [o.value for o in Outcome if o not in FINAL_OUTCOMES]


def observe_batch(pbx: str) -> Callable[[Batch], None]:
    """The listener's ``on_stored`` hook: one histogram sample per batch, not per event."""
    size = AMI_BATCH_SIZE.labels(pbx)
    latency = AMI_COMMIT_LATENCY.labels(pbx)

    def observe(batch: Batch) -> None:
        size.observe(len(batch.events))
        if batch.events:
            latency.observe((utcnow() - batch.events[0].received_at).total_seconds())

    return observe


_LISTENERS: weakref.WeakSet[Listener] = weakref.WeakSet()


def watch_listener(listener: Listener) -> None:
    """Export this listener's state and counters (labelled with its PBX) while it lives."""
    _LISTENERS.add(listener)
    if listener.on_stored is None:  # a benchmark may have its own hook
        listener.on_stored = observe_batch(listener.settings.pbx_name)


def _spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.batch"), key=lambda p: int(p.stem))


class ListenersCollector(Collector):
    """The AMI listeners of this process, read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        listeners = list(_LISTENERS)
        families = {
            "up": GaugeMetricFamily(
                "siaga112_ami_up",
                "1 when the listener is logged in to Asterisk and storing (its /readyz check)",
                labels=["pbx"],
            ),
            "spool_batches": GaugeMetricFamily(
                "siaga112_ami_spool_batches", "Batches waiting in the spool", labels=["pbx"]
            ),
            "spool_bytes": GaugeMetricFamily(
                "siaga112_ami_spool_bytes", "Bytes waiting in the spool", labels=["pbx"]
            ),
            "spool_age": GaugeMetricFamily(
                "siaga112_ami_spool_oldest_age_seconds",
                "Age of the oldest spooled batch (0: empty)",
                labels=["pbx"],
            ),
        }
        counters = {
            name: CounterMetricFamily(f"siaga112_ami_{name}", doc, labels=["pbx"])
            for name, doc in COUNTERS.items()
        }
        now = utcnow().timestamp()
        for listener in listeners:
            labels = [listener.settings.pbx_name]
            families["up"].add_metric(labels, 1.0 if listener.readiness() == "ok" else 0.0)
            for name, counter in counters.items():
                counter.add_metric(labels, float(getattr(listener.counters, name)))
            files = _spool_files(listener.spool.directory)
            families["spool_batches"].add_metric(labels, float(len(files)))
            families["spool_bytes"].add_metric(labels, float(listener.spool.size))
            oldest = 0.0
            with contextlib.suppress(FileNotFoundError):  # replayed meanwhile
                oldest = max(now - files[0].stat().st_mtime, 0.0) if files else 0.0
            families["spool_age"].add_metric(labels, oldest)
        yield from families.values()
        yield from counters.values()


# Listener.counters fields exported as counters (siaga112_ami_<name>_total).
COUNTERS = {
    "connections": "Logins to Asterisk (reconnects are this minus one)",
    "frames": "AMI frames read",
    "stored_events": "AMI events committed to the database",
    "batches": "Batches committed",
    "spooled_batches": "Batches written to the spool while the database was unavailable",
    "junk_frames": "Frames with debris, logged and skipped",
    "gap_closed_calls": "Calls closed after an AMI gap",
}

REGISTRY.register(ListenersCollector())

_FASTAGI: weakref.WeakSet[FastAgiServer] = weakref.WeakSet()


def watch_fastagi(server: FastAgiServer) -> None:
    """Export this FastAGI server's slots and counters while it lives."""
    _FASTAGI.add(server)


class FastAgiCollector(Collector):
    """The FastAGI servers of this process (`serve` or `fastagi`), read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        in_use = GaugeMetricFamily(
            "siaga112_fastagi_sessions_in_use", "IVR sessions running now", labels=["port"]
        )
        slots = GaugeMetricFamily(
            "siaga112_fastagi_max_sessions", "IVR sessions allowed at once", labels=["port"]
        )
        sessions = CounterMetricFamily(
            "siaga112_fastagi_sessions",
            "IVR sessions by how they went: served, or skipped (no slot: queued unchecked)",
            labels=["port", "result"],
        )
        refused = CounterMetricFamily(
            "siaga112_fastagi_refused_peers",
            "Connections from peers not in [fastagi] allowed_peers",
            labels=["port"],
        )
        errors = CounterMetricFamily(
            "siaga112_fastagi_accept_errors", "accept() failures, retried", labels=["port"]
        )
        for server in list(_FASTAGI):
            port = str(server.port)
            in_use.add_metric([port], float(server.active_sessions()))
            slots.add_metric([port], float(server.max_sessions))
            sessions.add_metric([port, "served"], float(server.counters.served))
            sessions.add_metric([port, "skipped"], float(server.counters.skipped))
            refused.add_metric([port], float(server.counters.refused_peers))
            errors.add_metric([port], float(server.counters.accept_errors))
        yield from (in_use, slots, sessions, refused, errors)


REGISTRY.register(FastAgiCollector())


class DatabaseCollector(Collector):
    """Calls and users as the database holds them, read at scrape time (indexed queries)."""

    def __init__(self, engine: Engine, *, window: timedelta = timedelta(hours=24)) -> None:
        self.engine = engine
        self.window = window

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        try:
            with self.engine.connect() as connection:
                by_outcome = connection.execute(
                    select(Call.pbx, Call.outcome, func.count())
                    .where(Call.started_at >= now - self.window)
                    .group_by(Call.pbx, Call.outcome)
                ).all()
                in_progress = connection.execute(
                    select(Call.pbx, Call.outcome, func.count())
                    .where(Call.outcome.in_(LIVE_OUTCOMES))
                    .group_by(Call.pbx, Call.outcome)
                ).all()
                last_call = connection.execute(
                    select(Call.pbx, func.max(Call.started_at)).group_by(Call.pbx)
                ).all()
                answered = connection.execute(
                    select(Call.pbx, Call.started_at, Call.answered_at).where(
                        Call.answered_at >= now - timedelta(hours=1)
                    )
                ).all()
                ivr_runs = connection.execute(
                    select(IvrRun.outcome, IvrRun.lookup_status, func.count())
                    .where(IvrRun.started_at >= now - self.window)
                    .group_by(IvrRun.outcome, IvrRun.lookup_status)
                ).all()
                queued = connection.execute(
                    select(Notification.status, func.count()).group_by(Notification.status)
                ).all()
                locked = connection.scalar(
                    # Names locked out (users.login counts failures by name, known or not).
                    select(func.count())
                    .select_from(LoginFailure)
                    .where(LoginFailure.locked_until > now)
                )
        except Exception as exc:  # a scrape must not fail on a database outage; say so
            log.warning("metrics: database not readable (%s)", type(exc).__name__)
            down = GaugeMetricFamily("siaga112_database_up", "1 when the database answers")
            down.add_metric([], 0.0)
            yield down
            return
        up = GaugeMetricFamily("siaga112_database_up", "1 when the database answers")
        up.add_metric([], 1.0)
        yield up
        yield _gauge(
            "siaga112_calls_last_24h",
            "Calls started in the last 24 hours, by PBX and telephony outcome",
            ["pbx", "outcome"],
            by_outcome,
        )
        yield _gauge(
            "siaga112_calls_in_progress",
            "Calls not yet ended, by PBX and state (in_ivr, queued, ringing, connected)",
            ["pbx", "outcome"],
            in_progress,
        )
        last = GaugeMetricFamily(
            "siaga112_last_call_started_timestamp_seconds",
            "When the newest call started (Unix time), by PBX",
            labels=["pbx"],
        )
        for pbx, started in last_call:
            if started is not None:
                when = started if started.tzinfo else started.replace(tzinfo=now.tzinfo)
                last.add_metric([pbx], when.timestamp())
        yield last
        yield from _answer_times(answered)
        yield _gauge(
            "siaga112_ivr_runs",
            "IVR runs in the window by outcome and look-up (lookup=miss: queued unchecked)",
            ["outcome", "lookup"],
            [(outcome, lookup or "none", count) for outcome, lookup, count in ivr_runs],
        )
        yield _gauge(
            "siaga112_notifications",
            "Agency notifications by delivery status (pending and failed: still to be sent)",
            ["status"],
            queued,
        )
        users = GaugeMetricFamily("siaga112_users_locked_out", "Users locked out right now")
        users.add_metric([], float(locked or 0))
        yield users


def _gauge(name: str, doc: str, labels: list[str], rows: Iterable[Any]) -> GaugeMetricFamily:
    """A gauge from rows of label values then the value; enum labels by their value."""
    family = GaugeMetricFamily(name, doc, labels=labels)
    for *keys, value in rows:
        family.add_metric([str(getattr(k, "value", k)) for k in keys], float(value))
    return family


ANSWER_BUCKETS = (10, 20, 30, 60, 120)


def _answer_times(rows: Sequence[Any]) -> Iterator[Metric]:
    """Calls answered in the last hour and how many within N seconds of reaching the PBX (the
    caller's own wait, IVR included): the answer-time target's alert reads their ratio."""
    total = GaugeMetricFamily(
        "siaga112_calls_answered_last_hour", "Calls answered in the last hour", labels=["pbx"]
    )
    within = GaugeMetricFamily(
        "siaga112_calls_answered_within_seconds_last_hour",
        "Calls answered in the last hour within le seconds of reaching the PBX",
        labels=["pbx", "le"],
    )
    counts: dict[str, list[int]] = {}
    for pbx, started, answered in rows:
        waited = (answered - started).total_seconds()
        row = counts.setdefault(pbx, [0] * (len(ANSWER_BUCKETS) + 1))
        row[-1] += 1
        for i, bound in enumerate(ANSWER_BUCKETS):
            row[i] += waited <= bound
    for pbx, row in counts.items():
        total.add_metric([pbx], float(row[-1]))
        for bound, n in zip(ANSWER_BUCKETS, row, strict=False):
            within.add_metric([pbx, str(bound)], float(n))
    yield total
    yield within


class MetricsServer:
    """Prometheus' HTTP exporter on its own port, with collectors registered for its life."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry = REGISTRY) -> None:
        self.host, self.port, self.registry = host, port, registry
        self._collectors: list[Collector] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)
        self._collectors.append(collector)

    def start(self) -> bool:
        """Serve; False (and a warning) when the port is taken, e.g. by another API worker."""
        try:
            self._server, self._thread = start_http_server(
                self.port, addr=self.host, registry=self.registry
            )
        except OSError as exc:
            log.warning("metrics not served on %s:%d (%s)", self.host, self.port, exc.strerror)
            return False
        self.port = self._server.server_address[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return True

    def stop(self) -> None:
        for collector in self._collectors:
            self.registry.unregister(collector)
        self._collectors.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def start_metrics(settings: MetricsSettings, engine: Engine | None = None) -> MetricsServer | None:
    """The exporter when ``[metrics] enabled`` (with the database's figures when ``engine``)."""
    if not settings.enabled:
        return None
    server = MetricsServer(settings.host, settings.port)
    if not server.start():
        return None
    if engine is not None:
        server.add(DatabaseCollector(engine))
    return server
