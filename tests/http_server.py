"""The real app served by uvicorn on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from callcenter.live import InProcessBus
from tests.ami.helpers import wait_for


@contextmanager
def served(
    app: FastAPI, *, configured: Callable[[], None] | None = None, **config: Any
) -> Iterator[str]:
    """``app`` over real HTTP; yields its base URL. ``configured`` runs once uvicorn has set up
    its logging (a test capturing uvicorn's log lines adds its handler there)."""
    options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_level": "warning", **config}
    running = uvicorn.Server(uvicorn.Config(app, **options))
    if configured is not None:
        configured()
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_for(lambda: running.started, "uvicorn started")
    port = running.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(10)
        bus: InProcessBus | None = getattr(app.state, "live_bus", None)
        if bus is not None:
            bus.close()
