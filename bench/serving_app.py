"""The app ``bench/serving.py`` serves: playnext's own app plus a bare hello-world route, in one process, so the
baseline runs on the very same server (uvicorn, event loop, middleware, the front router the surfaces are answered
by) as the surfaces. ``python -m bench.serving_app --workers N --port P`` serves it as ``playnext serve --workers
N`` would, the hello-world in every worker."""

from __future__ import annotations

import argparse

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from playnext.api.app import create_app
from playnext.api.observability import NamedRoute
from playnext.config import load_settings


async def hello(request: Request) -> Response:
    return Response(b'{"hello":"world"}', media_type="application/json")


def with_hello(application: FastAPI) -> FastAPI:
    application.front.insert(0, NamedRoute("/hello", hello))  # type: ignore[attr-defined]
    return application


def worker_app() -> FastAPI:
    from playnext.api.workers import worker_app as playnext_worker

    return with_hello(playnext_worker())


def one_process_app() -> FastAPI:
    return with_hello(create_app(load_settings()))


if __name__ == "__main__":
    from playnext.api.workers import serve_workers

    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve_workers(load_settings(workers=args.workers, port=args.port), app="bench.serving_app:worker_app")
