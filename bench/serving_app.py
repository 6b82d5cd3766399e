"""The app ``bench/serving.py`` serves: playnext's own app, with a bare hello-world app in front of it on the same
server (uvicorn with ``playnext serve``'s options, the same process, event loop and workers), so the baseline the
surfaces are compared with is what the server does for an app that does nothing. ``python -m bench.serving_app
--workers N --port P`` serves it as ``playnext serve --workers N`` would, the hello-world in every worker.

Two hello-worlds:
- ``GET /hello``, the baseline, is a bare ASGI app: ``BesideBare`` answers it before playnext's app sees the
  request, so it pays none of playnext's layers (the front door's request id, size limits, timing and routing) nor
  FastAPI's.
- ``GET /app-hello`` is the same answer as a route of playnext's app, answered by its front door as the surfaces
  are. Its ratio to the bare one is what those layers cost every request.

Until 2026-11-27 the bench's only hello-world was the second, so its ratios were against a baseline that already
paid playnext's layers (README, *Benchmarks*).
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from playnext.api.app import create_app
from playnext.api.observability import NamedRoute
from playnext.config import load_settings

_BODY = b'{"hello":"world"}'
_START = {"type": "http.response.start", "status": 200,
          "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]}  # fmt: skip
_DONE = {"type": "http.response.body", "body": _BODY}


async def bare_hello(scope: Scope, receive: Receive, send: Send) -> None:
    """A hello-world with nothing around it: two ASGI messages, whatever the request."""
    await send(_START)
    await send(_DONE)


class BesideBare:
    """``app``, with ``/hello`` answered by ``bare_hello`` before it (lifespan and everything else go to ``app``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/hello":
            await bare_hello(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def app_hello(request: Request) -> Response:
    return Response(_BODY, media_type="application/json")


def with_hellos(application: FastAPI) -> BesideBare:
    application.front.insert(0, NamedRoute("/app-hello", app_hello))  # type: ignore[attr-defined]
    return BesideBare(application)


def worker_app() -> BesideBare:
    from playnext.api.workers import worker_app as playnext_worker

    return with_hellos(playnext_worker())


def one_process_app() -> BesideBare:
    return with_hellos(create_app(load_settings()))


if __name__ == "__main__":
    from playnext.api.workers import serve_workers

    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve_workers(load_settings(workers=args.workers, port=args.port), app="bench.serving_app:worker_app")
