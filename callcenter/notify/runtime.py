"""The notification worker in a thread of its own: beside the API in `serve`, or alone."""

from __future__ import annotations

import logging
import threading

from callcenter.db import make_engine, make_sessionmaker
from callcenter.notify.worker import Worker
from callcenter.settings import Settings

log = logging.getLogger(__name__)


class NotifyRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.resolved_database_url)
        self.worker = Worker(make_sessionmaker(self.engine), settings)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self.worker.run_forever, args=(self.stop_event,), name="notify", daemon=True
        )

    def start(self) -> None:
        log.info("notification worker started")
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        self.engine.dispose()
