"""``POST /v1/events``: the collector. Parse, validate, hand to the log, answer once it is on disk.

It is a plain Starlette route, not a FastAPI one: FastAPI's per-route machinery (dependency solving, its
request/response wrappers) cost more than all of ingest's own work for small batches; measured on this machine, a
bare route answered 19k requests/s against FastAPI's 5k. The route reads the raw body anyway (msgspec validates
it), so FastAPI gave it nothing but the spec, which ``OPENAPI`` below keeps in ``/openapi.json``.
"""

from __future__ import annotations

import asyncio

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from playnext.api.auth import require_scope
from playnext.api.errors import ApiError
from playnext.api.observability import NamedRoute
from playnext.events.log import LogUnavailable
from playnext.events.log_service import AnyLog
from playnext.events.validation import BadBody, IngestReport, decode_whole, split_body, validate
from playnext.online.session import plays_of
from playnext.privacy.tombstones import refuse_forgotten

_require_ingest = require_scope("ingest")

_NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/ndjson")
_JSON_TYPES = ("application/json", "")


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():  # a declared size over the limit is refused by SizeLimits
        raise ApiError(400, "bad_request", "Content-Length is not a number")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked uploads have no Content-Length; stop reading at the limit
            raise ApiError(413, "too_large", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def ingest_events(request: Request) -> Response:
    _require_ingest(request)
    settings = request.app.state.settings
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _NDJSON_TYPES and media not in _JSON_TYPES:
        raise ApiError(415, "unsupported_media_type", "send application/json (an array) or application/x-ndjson")
    body = await _read_capped(request, settings.max_body_bytes)
    ndjson = media in _NDJSON_TYPES
    events = None if ndjson else decode_whole(body, request.app.state.clock)
    if events is not None:
        rejections = []
        count = len(events)
    else:
        try:
            records = split_body(body, ndjson=ndjson)
        except BadBody as exc:
            raise ApiError(400, "bad_body", str(exc)) from None
        count = len(records)
    if not count:
        raise ApiError(400, "empty_batch", "the batch holds no events")
    if count > settings.max_batch_events:
        raise ApiError(413, "batch_too_large", f"{count} events in one batch; the limit is {settings.max_batch_events}")
    if events is None:
        events, indexes, rejections = validate(records, request.app.state.clock)
    else:
        indexes = list(range(len(events)))
    events, _, refused = refuse_forgotten(events, indexes, request.app.state.tombstones)
    rejections = sorted(rejections + refused, key=lambda r: r.index)
    report = IngestReport()
    if events:
        event_log: AnyLog = request.app.state.event_log
        try:
            stored = await asyncio.wrap_future(event_log.submit(events))
        except LogUnavailable as exc:
            raise ApiError(503, "log_unavailable", f"events were not stored: {exc}") from None
        report.add(events, stored, rejections)
        request.app.state.session_feed.add(plays_of(events, stored))  # written behind the answer (SessionFeed)
    else:
        report.add([], [], rejections)
    _count(request, report)
    status = 422 if not events else 200
    return Response(msgspec.json.encode(report), status_code=status, media_type="application/json")


def _count(request: Request, report: IngestReport) -> None:
    ingested = request.app.state.metrics.ingested
    ingested.labels("accepted").inc(report.accepted)
    ingested.labels("duplicate").inc(report.duplicates)
    ingested.labels("rejected").inc(report.rejected)


routes = [NamedRoute("/v1/events", ingest_events, methods=["POST"])]


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


OPENAPI = {
    "/v1/events": {
        "post": {
            "tags": ["events"],
            "summary": "Ingest listening events",
            "operationId": "ingest_events",
            "description": (
                "A JSON array of events, or NDJSON (one event a line, `Content-Type: application/x-ndjson`). "
                "Answers only once accepted events are flushed to disk. A duplicate `event_id` is accepted and "
                "stored once. Each bad event is rejected with its index and reason; the good events of the batch "
                "are kept. Needs a key with the `ingest` scope."
            ),
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "minItems": 1}
                    },
                    "application/x-ndjson": {"schema": {"$ref": "#/components/schemas/Event"}},
                },
            },
            "responses": {
                "200": {
                    "description": "Every event accepted or a duplicate, or a mix with rejections listed.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestReport"}}},
                },
                "400": _error("The body is not JSON / NDJSON, is empty, or nests too deeply."),
                "401": _error("No valid API key."),
                "403": _error("The key lacks the `ingest` scope."),
                "413": _error("Body or batch over the configured limit."),
                "415": _error("Neither JSON nor NDJSON."),
                "422": {
                    "description": "Every event in the batch was rejected.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestReport"}}},
                },
                "503": _error("The log cannot write; nothing was acknowledged."),
            },
        }
    }
}
