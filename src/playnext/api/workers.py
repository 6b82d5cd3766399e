"""``playnext serve --workers N``: N serving processes on one port, the event log's writer in their supervisor.

Python answers one request at a time per process, so one server process uses one core, however many the machine has.
This module's supervisor starts N uvicorn workers and restarts any that dies. Each worker listens on a socket of its
own on the same port (``SO_REUSEPORT``), so the kernel spreads new connections over them (by a hash of their
addresses); with one shared socket (``uvicorn --workers``) whichever worker woke first took them: 8 connections
opened at once were split 8:0, 7:1 or 3:5, and a keep-alive connection stays where it landed. A worker starts
listening once it has loaded the model, so none is sent connections it cannot answer yet. What the workers must
share:
- the event log, which admits one writer (dedup, group commit), is opened here and served to the workers over a
  private socket (``events.log_service``): a retried event is stored once whichever worker takes it;
- background compaction runs here, once, not in every worker;
- Prometheus counts go to files in a private directory, and any worker's ``/metrics`` adds up all of them
  (``api.observability``).

Everything else the workers share already lives in files or the online store (keys, tombstones, the model
registry, experiments, the lake, SQLite or Redis). What stays per worker, as it does per replica: the rate limiter's
token buckets (with N workers a key gets up to N times its rate), the Blend and search backlog
(``surface_backlog`` each) and the cache of computations in flight. The surface threads are shared out
(``api.app.SURFACE_THREADS``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

from fastapi import FastAPI

from playnext.api.app import SERVER, compact_once, create_app
from playnext.api.observability import configure_json_logs
from playnext.config import Settings
from playnext.events.log import event_log_for
from playnext.events.log_service import LogService, RemoteLog

log = logging.getLogger(__name__)

APP = "playnext.api.workers:worker_app"
SETTINGS_ENV = "PLAYNEXT_WORKER_SETTINGS"  # the supervisor's settings, as JSON: every worker serves the same
SOCKET_ENV = "PLAYNEXT_WORKER_LOG_SOCKET"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve_workers(settings: Settings, app: str = APP) -> None:
    """Serve ``settings.workers`` processes until SIGTERM or SIGINT. ``app``: the factory each worker calls (the
    serving bench adds its hello-world route to ``worker_app``'s). Raises ``LogLocked`` when another process holds
    the log, ``OSError`` when the port is taken."""
    _check_port(settings.host, settings.port)
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
        _supervise(settings, app)
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


def _check_port(host: str, port: int) -> None:
    """Fail now, with the reason, if something else holds the port: every worker would fail to bind it."""
    with _socket_for(host) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


RESTART_DELAY_S = 1.0
GRACE_S = 15.0  # uvicorn's graceful shutdown (10 s), then the app's lifespan
# A worker that dies this soon after its start, this many times in a row, cannot start: the server stops and says
# so rather than restart it forever.
EARLY_DEATH_S, EARLY_DEATHS = 30.0, 5


class WorkersFailing(RuntimeError):
    """The workers keep dying as they start (their log says why)."""


def _supervise(settings: Settings, app: str) -> None:
    """Start the workers, restart any that dies, and stop them all on SIGTERM or SIGINT."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or locks copied mid-use
    stop = threading.Event()

    started: dict[int, float] = {}

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(app, settings.host, settings.port), daemon=False)
        process.start()
        started[id(process)] = time.monotonic()
        return process

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers = [start() for _ in range(settings.workers)]
    early_deaths = 0
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(workers):
                if process.is_alive() or stop.is_set():
                    continue
                early = time.monotonic() - started.pop(id(process)) < EARLY_DEATH_S
                early_deaths = early_deaths + 1 if early else 0
                if early_deaths >= EARLY_DEATHS:
                    raise WorkersFailing(
                        f"serving workers died {early_deaths} times in a row within {EARLY_DEATH_S:.0f} s of "
                        f"starting (exit code {process.exitcode})"
                    )
                log.error("serving worker %s exited with %s; starting another", process.pid, process.exitcode)
                time.sleep(RESTART_DELAY_S)  # a worker that cannot start must not spin the machine
                workers[i] = start()
    finally:
        for process in workers:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)  # type: ignore[arg-type]
        deadline = time.monotonic() + GRACE_S
        for process in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("serving worker %s did not stop within %s s; killing it", process.pid, GRACE_S)
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker(app: str, host: str, port: int) -> None:
    """One serving process: its own listening socket on the shared port."""
    import uvicorn

    sock = _socket_for(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, factory=True, log_level="warning", log_config=None, access_log=False,
                            timeout_graceful_shutdown=10, **SERVER)  # type: ignore[arg-type]  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])


def _socket_for(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)


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
