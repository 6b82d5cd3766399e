"""``playnext serve --workers N``: N serving processes on one port, the event log's writer in their supervisor.

Python answers one request at a time per process, so one server process uses one core, however many the machine
has. uvicorn's supervisor starts the workers on one shared socket and restarts any that dies; this module adds what
they must share:
- the event log, which admits one writer (dedup, group commit), is opened here and served to the workers over a
  private socket (``events.log_service``): a retried event is stored once whichever worker takes it;
- background compaction runs here, once, not in every worker;
- Prometheus counts go to files in a private directory, and any worker's ``/metrics`` adds up all of them
  (``api.observability``).

Everything else the workers share already lives in files or the online store (keys, tombstones, the model
registry, experiments, the lake, SQLite or Redis). What stays per worker, as it does per replica: the rate limiter's
token buckets (with N workers a key gets up to N times its rate), the Blend and search backlog
(``surface_backlog`` each) and the cache of computations in flight.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from fastapi import FastAPI

from playnext.api.app import SERVER, compact_once, create_app
from playnext.api.observability import configure_json_logs
from playnext.config import Settings
from playnext.events.log import event_log_for
from playnext.events.log_service import LogService, RemoteLog

APP = "playnext.api.workers:worker_app"
SETTINGS_ENV = "PLAYNEXT_WORKER_SETTINGS"  # the supervisor's settings, as JSON: every worker serves the same
SOCKET_ENV = "PLAYNEXT_WORKER_LOG_SOCKET"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve_workers(settings: Settings, app: str = APP) -> None:
    """Serve ``settings.workers`` processes until a signal stops them. ``app``: the factory each worker calls (the
    serving bench adds its hello-world route to ``worker_app``'s). Raises ``LogLocked`` when another process holds
    the log."""
    import uvicorn

    event_log = event_log_for(settings).open()
    private = Path(tempfile.mkdtemp(prefix="playnext-serve-"))  # mode 0700: the socket, the metrics files
    service: LogService | None = None
    stop = threading.Event()
    compactor = threading.Thread(target=_compact_every, args=(settings, stop), name="playnext-compaction", daemon=True)
    try:
        (private / "metrics").mkdir()
        service = LogService(event_log, private / "log.sock").start()
        if settings.compact_interval_s > 0:
            compactor.start()
        os.environ.update({
            SETTINGS_ENV: settings.model_copy(update={"compact_interval_s": 0.0}).model_dump_json(),
            SOCKET_ENV: str(service.path),
            METRICS_ENV: str(private / "metrics"),
        })  # fmt: skip
        uvicorn.run(
            app,
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # the JSON lines each worker configures
            access_log=False,
            **SERVER,  # type: ignore[arg-type]
            timeout_graceful_shutdown=10,
        )
    finally:
        stop.set()
        if compactor.is_alive():
            compactor.join()
        if service is not None:
            service.close()
        event_log.close()
        for name in (SETTINGS_ENV, SOCKET_ENV, METRICS_ENV):
            os.environ.pop(name, None)
        shutil.rmtree(private, ignore_errors=True)


def _compact_every(settings: Settings, stop: threading.Event) -> None:
    while not stop.wait(settings.compact_interval_s):
        compact_once(settings)


def worker_app() -> FastAPI:
    """One worker's app: the supervisor's settings, its log through the socket."""
    configure_json_logs()
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    path = Path(os.environ[SOCKET_ENV])
    return create_app(settings, open_log=lambda: RemoteLog(path, on_lost=_stop_this_worker).open())


def _stop_this_worker() -> None:
    """The supervisor, and the log's writer with it, is gone: nothing can be logged any more, and no one would
    restart this worker, so it shuts down (as on a SIGTERM) and frees the port rather than answer 503s."""
    os.kill(os.getpid(), signal.SIGTERM)
