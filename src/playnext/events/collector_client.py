"""A client for a running collector: how ``playnext events import --url`` sends a file to ``playnext serve``.

The server owns the log while it runs, so an import then goes over HTTP. Batches carry their ``event_id``s, which
makes retries safe: a batch whose answer was lost is sent again and its events come back as duplicates.
"""

from __future__ import annotations

import time

import httpx

from playnext.events.schema import Event, encode_lines

RETRIES = 5


class CollectorError(RuntimeError):
    pass


class CollectorClient:
    def __init__(self, url: str, key: str, *, timeout: float = 60.0) -> None:
        self._url = url.rstrip("/") + "/v1/events"
        self._http = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
        )

    def __enter__(self) -> CollectorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def append(self, events: list[Event]) -> list[bool | str]:
        """Per event: True stored, False a duplicate, or the server's reason for rejecting it."""
        body = encode_lines(events)
        for attempt in range(RETRIES):
            try:
                answer = self._http.post(self._url, content=body)
            except httpx.TransportError as exc:
                error = f"cannot reach {self._url}: {exc}"
            else:
                if answer.status_code in (200, 422):
                    return _verdicts(events, answer.json())
                if answer.status_code < 500:
                    raise CollectorError(f"{self._url} answered {answer.status_code}: {_message(answer)}")
                error = f"{self._url} answered {answer.status_code}: {_message(answer)}"
            time.sleep(min(2.0**attempt * 0.2, 5.0))
        raise CollectorError(error)


def _message(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("message", answer.text[:200]))
    except ValueError:
        return answer.text[:200]


def _verdicts(events: list[Event], report: dict) -> list[bool | str]:
    accepted = set(report.get("accepted_ids", []))
    reasons = {r["index"]: r["reason"] for r in report.get("rejections", [])}
    return [reasons.get(i, e.event_id in accepted) for i, e in enumerate(events)]
