"""The front router: the hot routes (surfaces, ingest, metrics) are answered here, in front of FastAPI's stack.

FastAPI wraps every request in about ten layers (server errors, telemetry, body limits, exception handlers, an
exit stack, the router's linear match, the route's own exception wrapper); measured with py-spy on a precomputed
surface, those layers were about a quarter of the request, as much as reading and encoding the list. The routes
that listeners' apps call on every screen are plain Starlette endpoints already (``api.lean``), so they need none
of it: this router matches them first and answers with the same error shape (``errors.error_for``). Everything
else (admin, models, the dashboard, the docs) falls through to FastAPI unchanged, and so does a request that
matches a front route's path but not its method, so 405s stay FastAPI's. The request-id, metrics and size-limit
middleware sit outside this router and see every request. FastAPI's native OpenTelemetry, once someone configures
a provider, also sees every request (it wraps the whole app in ``FastAPI.__call__``), but names only the routes
that fall through; playnext's Prometheus metrics time every route by its template.

A path is matched by one dictionary lookup on its literal segments, not by trying each route's regular expression
in turn: Discover Weekly's route came fourth, after four misses of about a microsecond each.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from playnext.api.errors import error_for

_PARAM = re.compile(r"\{(\w+)\}")
_Found = tuple[int, Route, tuple[tuple[str, int], ...]]  # (the route's place in the list, it, its parameters)
_NO_SHAPES: dict[tuple[int, ...], tuple[itemgetter, dict[Any, _Found]]] = {}  # type: ignore[type-arg]


class FrontRoutes:
    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app = app
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (found := self.match(scope)) is not None:
            route, params = found
            if route.methods is None or scope["method"] in route.methods:
                scope["endpoint"], scope["path_params"] = route.endpoint, params
                scope["route"] = route  # the template the metrics time it under
                request = Request(scope, receive, send)
                try:
                    response = await route.endpoint(request)
                except Exception as exc:  # the error shape FastAPI's handlers give its own routes
                    response = error_for(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
