"""The app ``bench/serving.py`` serves: the baseline hello-world is bare (none of playnext's layers), the in-app
one and everything else go through playnext's app."""

from __future__ import annotations

from bench.serving_app import with_hellos
from fastapi.testclient import TestClient

from playnext.api.app import create_app
from playnext.config import Settings


def test_the_bare_hello_world_is_answered_before_playnext_and_the_rest_reaches_it(settings: Settings) -> None:
    with TestClient(with_hellos(create_app(settings))) as client:  # the lifespan reaches playnext's app too
        bare, in_app = client.get("/hello"), client.get("/app-hello")
        assert bare.status_code == in_app.status_code == 200
        assert bare.content == in_app.content == b'{"hello":"world"}'
        assert bare.headers["content-type"] == in_app.headers["content-type"] == "application/json"
        # playnext's middleware names every request it sees; the bare app's never reach it
        assert "x-request-id" not in bare.headers and in_app.headers["x-request-id"]
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/users/u1/discover-weekly").status_code == 401  # playnext's key check, as before
        timed = client.app.app.state.metrics.family("playnext_http_request_duration_seconds")  # type: ignore[attr-defined]
        routes = {sample.labels["route"] for metric in timed for sample in metric.samples}
        assert "/app-hello" in routes and "/hello" not in routes
