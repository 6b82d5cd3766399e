"""``create_app(settings)``: the one way to build the HTTP service, for ``playnext serve`` and for tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import playnext
from playnext.api import errors
from playnext.api.keys import KeyStore
from playnext.api.routes import events, health
from playnext.config import Settings
from playnext.events.log import EventLog, event_log_for
from playnext.events.schema import Event
from playnext.events.validation import Clock, IngestReport


def create_app(settings: Settings, event_log: EventLog | None = None) -> FastAPI:
    """Build the app; it opens (and later closes) the event log unless one is handed in."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = event_log is None
        app.state.event_log = event_log or event_log_for(settings).open()
        try:
            yield
        finally:
            if owned:
                app.state.event_log.close()

    app = FastAPI(
        title="playnext",
        version=playnext.__version__,
        description="Events in, personalized audio out.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = KeyStore(settings.keys_file)
    app.state.clock = Clock(max_skew=dt.timedelta(seconds=settings.max_clock_skew_s))
    app.state.event_log = event_log
    errors.install(app)
    app.router.routes.extend(events.routes)
    app.include_router(health.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's spec plus the msgspec event schemas, which FastAPI cannot see because routes read raw bodies."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    _, components = msgspec.json.schema_components([Event, IngestReport], ref_template="#/components/schemas/{name}")
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    schemas["Event"] = {
        "oneOf": [{"$ref": f"#/components/schemas/{t.__name__}"} for t in Event.__args__],  # type: ignore[attr-defined]
        "discriminator": {"propertyName": "type"},
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    }
    spec["paths"].update(events.OPENAPI)
    spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    app.openapi_schema = spec
    return spec
