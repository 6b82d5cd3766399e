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
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from playnext.api.errors import error_for


class FrontRoutes:
    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope["route"] = route  # the template the metrics time it under
                    request = Request(scope, receive, send)
                    try:
                        response = await route.endpoint(request)
                    except Exception as exc:  # the error shape FastAPI's handlers give its own routes
                        response = error_for(request, exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
