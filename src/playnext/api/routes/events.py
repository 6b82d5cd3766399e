"""``POST /v1/events``: the collector. Parse, validate, hand to the log, answer once it is on disk."""

from __future__ import annotations

import asyncio

import msgspec
from fastapi import APIRouter, Depends, Request, Response

from playnext.api.auth import require_scope
from playnext.api.errors import ApiError
from playnext.events.log import EventLog, LogUnavailable
from playnext.events.validation import BadBody, IngestReport, decode_whole, split_body, validate

router = APIRouter()

_NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/ndjson")
_JSON_TYPES = ("application/json", "")


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiError(413, "too_large", f"the body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked uploads have no Content-Length; stop reading at the limit
            raise ApiError(413, "too_large", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/v1/events",
    summary="Ingest listening events",
    description=(
        "A JSON array of events, or NDJSON (one event a line, `Content-Type: application/x-ndjson`). "
        "Answers only once accepted events are flushed to disk. A duplicate `event_id` is accepted and stored "
        "once. Each bad event is rejected with its index and reason; the good events of the batch are kept. "
        "Needs a key with the `ingest` scope."
    ),
    responses={
        200: {"description": "Every event accepted or a duplicate, or a mix with rejections listed."},
        400: {"description": "The body is not JSON / NDJSON at all."},
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the `ingest` scope."},
        413: {"description": "Body or batch over the configured limit."},
        415: {"description": "Neither JSON nor NDJSON."},
        422: {"description": "Every event in the batch was rejected."},
        503: {"description": "The log cannot write; nothing was acknowledged."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}},
                "application/x-ndjson": {"schema": {"$ref": "#/components/schemas/Event"}},
            },
        }
    },
    dependencies=[Depends(require_scope("ingest"))],
)
async def ingest_events(request: Request) -> Response:
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
        events, _, rejections = validate(records, request.app.state.clock)
    report = IngestReport()
    if events:
        event_log: EventLog = request.app.state.event_log
        try:
            stored = await asyncio.wrap_future(event_log.submit(events))
        except LogUnavailable as exc:
            raise ApiError(503, "log_unavailable", f"events were not stored: {exc}") from None
        report.add(events, stored, rejections)
    else:
        report.add([], [], rejections)
    status = 422 if not events else 200
    return Response(msgspec.json.encode(report), status_code=status, media_type="application/json")
