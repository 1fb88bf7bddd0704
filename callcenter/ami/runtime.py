"""Wiring for a running listener: engine, store, spool, live bus, readiness probe."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from callcenter import logs, metrics
from callcenter.ami.call_rows import caller_name, int4_or_none, normalise_cached
from callcenter.ami.call_state import CallState
from callcenter.ami.listener import Listener
from callcenter.ami.spool import Spool
from callcenter.ami.store import CallStore
from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.idle_ping import ping_when_idle
from callcenter.gc_tuning import tune_for_throughput
from callcenter.live import InProcessBus, make_live_bus
from callcenter.settings import Settings

if TYPE_CHECKING:
    # `callcenter ami` serves no API: FastAPI (~0.2 s to import) only where serve attaches it.
    from fastapi import FastAPI

log = logging.getLogger(__name__)


def live_message(state: CallState, *, pbx: str, region: str) -> dict[str, Any]:
    """What the operator board needs about one call change."""

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "type": "call",
        "pbx": pbx,
        "uniqueid": state.uniqueid,
        "linkedid": state.linkedid,
        "outcome": state.outcome,
        "caller_id_raw": state.caller_id_raw,
        "caller_id_name": caller_name(state.caller_id_name),
        "caller_e164": normalise_cached(state.caller_id_raw, region).e164,
        "caller_id_private": state.private,
        "queue": state.queue,
        "queue_position": int4_or_none(state.queue_position),
        "operator": state.operator,
        "operator_interface": state.operator_interface,
        "started_at": iso(state.started_at),
        "queued_at": iso(state.queued_at),
        "answered_at": iso(state.answered_at),
        "ended_at": iso(state.ended_at),
        "wait_seconds": int4_or_none(state.wait_seconds),
        "answer_seconds": int4_or_none(state.answer_seconds),
        "talk_seconds": int4_or_none(state.talk_seconds),
        "overflows": state.overflows,
        "ended_by": state.ended_by,
        "gap": state.gap,
    }


class AmiRuntime:
    """The listener with its own engine (never the API's pool) and the live bus it feeds."""

    def __init__(
        self,
        settings: Settings,
        *,
        bus: InProcessBus | None = None,
        stop_at_eof: bool = False,
        port: int | None = None,
    ) -> None:
        self.settings = settings
        url = settings.resolved_database_url
        # Checked only after sitting idle, not before every batch (callcenter/db/idle_ping.py).
        self.engine = make_engine(url, pool_pre_ping=False)
        if self.engine.dialect.name == "postgresql":
            ping_when_idle(self.engine)
        self.bus = bus or make_live_bus(url)
        ami = settings.ami
        if port is not None:
            ami = ami.model_copy(update={"host": "127.0.0.1", "port": port})
        store = CallStore(
            make_sessionmaker(self.engine), pbx=ami.pbx_name, region=settings.phone_region
        )
        self.listener = Listener(
            ami,
            store,
            Spool(ami.spool_dir, ami.spool_max_bytes),
            publish=self._publish,
            stop_at_eof=stop_at_eof,
        )
        metrics.watch_listener(self.listener)
        logs.set_listener_pbx(ami.pbx_name)  # on every line the listener logs

    def _publish(self, states: list[CallState]) -> None:
        pbx, region = self.settings.ami.pbx_name, self.settings.phone_region
        self.bus.publish([live_message(s, pbx=pbx, region=region) for s in states])

    def attach(self, app: FastAPI) -> None:
        """Share the live bus with the API and report the listener on /readyz."""
        from callcenter.api.health import add_readiness_probe

        app.state.live_bus = self.bus
        add_readiness_probe(app, "ami", self.listener.readiness)

    def start(self) -> None:
        tune_for_throughput()  # the event path allocates per header: see gc_tuning
        self.listener.start()

    def wait(self) -> bool:
        return self.listener.wait()

    def stop(self) -> None:
        self.listener.stop()
        self.close()

    def close(self) -> None:
        self.bus.close()
        self.engine.dispose()
