"""The front door: every HTTP request's way in, and the hot routes (surfaces, ingest, metrics) answered there, in
front of FastAPI's stack.

FastAPI wraps every request in about ten layers (server errors, telemetry, body limits, exception handlers, an
exit stack, the router's linear match, the route's own exception wrapper); measured with py-spy on a precomputed
surface, those layers were about a quarter of the request, as much as reading and encoding the list. The routes
that listeners' apps call on every screen are plain Starlette endpoints already (``api.lean``), so they need none
of it: the front door matches them first and answers with the same error shape (``errors.error_for``).
Everything else (admin, models, the dashboard, the docs) goes on to FastAPI unchanged, and so does a request that
matches a front route's path but not its method, so 405s stay FastAPI's.

Every request, whoever answers it, is named (``X-Request-Id``), held to the size limits (``limits.refusal``) and
timed under its route's template here. Those were three middleware around the router, each a coroutine awaited
in turn, the first wrapping ``send`` to add the id to the answer's headers: in one process they and the router
cost about as much as a hello-world route's own work. Now a front route's answer gets the id in its headers
before it is sent, and only a request that goes on to FastAPI has its ``send`` wrapped. FastAPI's native
OpenTelemetry, once someone configures a provider, also sees every request (it wraps the whole app in
``FastAPI.__call__``), but names only the routes that go on to FastAPI; playnext's Prometheus metrics time every
route by its template.

A path is matched by one dictionary lookup on its literal segments, not by trying each route's regular expression
in turn: Discover Weekly's route came fourth, after four misses of about a microsecond each.
"""

from __future__ import annotations

import re
import time
from operator import itemgetter
from typing import Any

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from playnext.api.errors import error_for
from playnext.api.limits import refusal
from playnext.api.observability import Metrics, request_id, request_id_for

_PARAM = re.compile(r"\{(\w+)\}")
_Found = tuple[int, Route, tuple[tuple[str, int], ...]]  # (the route's place in the list, it, its parameters)
_NO_SHAPES: dict[tuple[int, ...], tuple[itemgetter, dict[Any, _Found]]] = {}  # type: ignore[type-arg]


class FrontRoutes:
    """The front routes by the literal segments of their paths."""

    def __init__(self, routes: list[Route]) -> None:
        # segment count → where a path's literal segments are → those literals → the route they name
        self._shapes: dict[int, dict[tuple[int, ...], tuple[itemgetter, dict[Any, _Found]]]] = {}  # type: ignore[type-arg]
        for order, route in enumerate(routes):
            parts = route.path.split("/")
            params, literal = [], []
            for i, part in enumerate(parts):
                if found := _PARAM.fullmatch(part):  # ``{name}``: a string; a convertor would read ``{name:int}``
                    params.append((found[1], i))
                elif "{" in part:
                    raise ValueError(f"front route {route.path!r}: only whole-segment string parameters are "
                                     "matched here")  # fmt: skip
                else:
                    literal.append(i)
            shapes = self._shapes.setdefault(len(parts), {})
            pick, table = shapes.setdefault(tuple(literal), (itemgetter(*literal), {}))
            table.setdefault(pick(parts), (order, route, tuple(params)))  # the first of two equal templates wins

    def match(self, scope: Scope) -> tuple[Route, dict[str, str]] | None:
        """The route a request's path names (the first listed, if several do) and its path parameters; None if
        none does. The method is not looked at."""
        # without the root path, as Starlette's own routes match
        parts = (get_route_path(scope) if scope.get("root_path") else scope["path"]).split("/")
        best: _Found | None = None
        for pick, table in self._shapes.get(len(parts), _NO_SHAPES).values():
            found = table.get(pick(parts))
            if found is not None and (best is None or found[0] < best[0]):
                for _, i in found[2]:  # a loop, not ``all()`` over a generator: half the time, on every request
                    if not parts[i]:
                        break
                else:
                    best = found
        if best is None:
            return None
        return best[1], {name: parts[i] for name, i in best[2]}


class FrontDoor:
    """``routes`` answered here, everything else by ``behind``; every HTTP request named, held to the size limits
    and timed (the module's docstring)."""

    def __init__(self, behind: ASGIApp, routes: list[Route], metrics: Metrics, max_body_bytes: int) -> None:
        self.behind, self.routes, self.metrics = behind, FrontRoutes(routes), metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.behind(scope, receive, send)
            return
        rid = request_id_for(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        header = (b"x-request-id", rid.encode())  # on every answer, whoever gives it
        status = 500
        named: _Named | None = None  # set for a request that goes on to FastAPI
        try:
            response = refusal(scope, self.max_body_bytes)
            if response is None:
                found = self.routes.match(scope)
                if found is None or (found[0].methods is not None and scope["method"] not in found[0].methods):
                    named = _Named(send, header)
                    await self.behind(scope, receive, named)
                    return
                route, scope["path_params"] = found
                scope["endpoint"], scope["route"] = route.endpoint, route  # the template the metrics time it under
                request = FrontRequest(scope, receive, send)
                try:
                    response = await route.endpoint(request)
                except Exception as exc:  # the error shape FastAPI's handlers give its own routes
                    response = error_for(request, exc)
            status = response.status_code
            response.raw_headers = [*response.raw_headers, header]
            await response(scope, receive, send)
        finally:
            if named is not None:
                status = named.status
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.timed(template, scope["method"], status).observe(time.perf_counter() - started)
            request_id.reset(token)


class FrontRequest(Request):
    """A front route's request, its app a plain attribute: Starlette's is a property, which a precomputed answer's
    route and helpers read eight times (the app's state: the store, the log, the metrics, the keys)."""

    app: Any = None  # shadows the property, so that the instance's own attribute is read

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope, receive, send)
        self.app = scope.get("app")  # set by the app the front door serves (``PlaynextApp``)


class _Named:
    """``send`` for a request that goes on to FastAPI: the request's id added to its answer's headers, and its
    status kept for the timing (500 until one is sent)."""

    __slots__ = ("header", "send", "status")

    def __init__(self, send: Send, header: tuple[bytes, bytes]) -> None:
        self.send, self.header, self.status = send, header, 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", []), self.header]
        await self.send(message)
