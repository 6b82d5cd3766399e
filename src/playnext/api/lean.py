"""Lean GET routes: plain Starlette routes with declared query parameters, checked here and described in the spec.

The surfaces are read on every screen a listener opens, so their per-request overhead is the product's. Measured on
this machine (``bench/serving.py``'s hello-world beside FastAPI routes on one server): a bare FastAPI route answered
about half the hello-world's requests/s, one with a validated query parameter about a third, before doing any work.
A surface that only reads a precomputed list cannot then reach half the hello-world rate, whatever it does. These
routes keep what FastAPI gave the surfaces (validated parameters with clear 422s, the read scope, an OpenAPI entry)
from one declaration, at a fraction of the cost, like the collector's route (``routes/events.py``) before them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from playnext.api.auth import require_scope
from playnext.api.errors import ApiError
from playnext.api.observability import NamedRoute

REQUIRED: Any = object()


@dataclass(frozen=True)
class Param:
    """One query parameter: ``int`` within ``ge``..``le``, or ``str`` of at most ``max_length`` characters."""

    name: str
    kind: type = str
    default: Any = REQUIRED
    ge: int | None = None
    le: int | None = None
    max_length: int | None = None
    description: str = ""

    def parse(self, raw: str | None) -> Any:
        if raw is None:
            if self.default is REQUIRED:
                raise ApiError(422, "invalid", f"query parameter {self.name!r} is required")
            return self.default
        if self.kind is int:
            try:
                value = int(raw)
            except ValueError:
                raise ApiError(422, "invalid", f"{self.name} must be an integer, got {raw[:40]!r}") from None
            if (self.ge is not None and value < self.ge) or (self.le is not None and value > self.le):
                raise ApiError(422, "invalid", f"{self.name} must be between {self.ge} and {self.le}, got {value}")
            return value
        if self.max_length is not None and len(raw) > self.max_length:
            raise ApiError(422, "invalid", f"{self.name} is longer than {self.max_length} characters")
        return raw

    def spec(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer" if self.kind is int else "string"}
        if self.ge is not None:
            schema["minimum"] = self.ge
        if self.le is not None:
            schema["maximum"] = self.le
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.default is not REQUIRED and self.default is not None:
            schema["default"] = self.default
        out = {"name": self.name, "in": "query", "required": self.default is REQUIRED, "schema": schema}
        return {**out, "description": self.description} if self.description else out


Handler = Callable[..., Awaitable[Response]]
_JSON = (b"content-type", b"application/json")


class JsonAnswer(Response):
    """A 200 whose JSON body is encoded already (msgspec). Starlette's ``Response`` works its headers out per answer
    (a charset check on the media type, a list built and two strings encoded), and a surface answers often."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code, self.background, self.body = 200, None, body
        self.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Starlette's, less what an HTTP answer with no background task never needs (a websocket prefix)."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


@dataclass
class LeanGet:
    path: str
    handler: Handler
    summary: str
    params: list[Param] = field(default_factory=list)
    scope: str = "read"
    tag: str = "surfaces"

    def route(self) -> NamedRoute:
        check = require_scope(self.scope)
        params = self.params
        handler = self.handler

        defaults = {p.name: p.default for p in params} if all(p.default is not REQUIRED for p in params) else None

        async def endpoint(request: Request) -> Response:
            check(request)
            # Most calls send no query string (every default): parsing an empty one cost a twentieth of a
            # precomputed answer.
            if request.scope["query_string"]:
                query = request.query_params
                values = {p.name: p.parse(query.get(p.name)) for p in params}
            else:
                values = defaults if defaults is not None else {p.name: p.parse(None) for p in params}
            return await handler(request, **request.scope["path_params"], **values)

        return NamedRoute(self.path, endpoint, methods=["GET"], name=self.handler.__name__)

    def spec(self) -> dict[str, Any]:
        path_params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
            for part in self.path.split("/")
            if part.startswith("{")
        ]

        def error(description: str) -> dict[str, Any]:
            return {"description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}  # fmt: skip

        return {
            "get": {
                "tags": [self.tag],
                "summary": self.summary,
                "operationId": self.handler.__name__,
                "security": [{"bearer": []}],
                "parameters": path_params + [p.spec() for p in self.params],
                "responses": {
                    "200": {
                        "description": "The list, with a request id, reasons and where it came from.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "401": error("No valid API key."),
                    "403": error(f"The key lacks the `{self.scope}` scope."),
                    "422": error("A parameter is out of range or malformed."),
                    "503": error(
                        "No model version is served yet, the exposure log cannot be written, or (Blend, search) "
                        "too many are under way (then with a `Retry-After`)."
                    ),
                },
            }
        }


def openapi_paths(routes: list[LeanGet]) -> dict[str, Any]:
    return {r.path: r.spec() for r in routes}
