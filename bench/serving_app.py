"""The app ``bench/serving.py`` serves: playnext's own app plus a bare hello-world route, in one process, so the
baseline runs on the very same server (uvicorn, event loop, middleware, the front router the surfaces are answered
by) as the surfaces."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from playnext.api.app import create_app
from playnext.api.observability import NamedRoute
from playnext.config import load_settings


async def hello(request: Request) -> Response:
    return Response(b'{"hello":"world"}', media_type="application/json")


app = create_app(load_settings())
app.front.insert(0, NamedRoute("/hello", hello))
