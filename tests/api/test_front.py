"""The front door answers its routes with the API's error shape and leaves everything else to the app behind; it
names, limits and times every request, whoever answers it."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from playnext.api.errors import ApiError
from playnext.api.front import FrontDoor
from playnext.api.observability import Metrics, NamedRoute, request_id


async def echo(request: Request) -> Response:
    return JSONResponse({"user": request.path_params["user_id"], "route": request.scope["route"].path})


async def refuse(request: Request) -> Response:
    raise ApiError(422, "invalid", "n must be between 1 and 30", {"X-Why": "range"})


async def crash(request: Request) -> Response:
    raise RuntimeError("the secret internals")


async def behind(request: Request) -> Response:
    return JSONResponse({"answered_by": "behind"})


@pytest.fixture
def client() -> TestClient:
    routes = [NamedRoute("/u/{user_id}", echo, methods=["GET"]), NamedRoute("/refuse", refuse),
              NamedRoute("/crash", crash)]  # fmt: skip
    app = Starlette(routes=[Route("/u/{user_id}", behind, methods=["GET"]), Route("/other", behind)])
    return TestClient(FrontDoor(app, routes, Metrics(), 1024), raise_server_exceptions=False)


def test_front_routes_are_answered_in_front_with_their_path_parameters(client: TestClient) -> None:
    assert client.get("/u/u42").json() == {"user": "u42", "route": "/u/{user_id}"}


def test_errors_keep_the_api_error_shape_and_say_nothing_of_internals(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    refused = client.get("/refuse")
    assert refused.status_code == 422 and refused.headers["x-why"] == "range"
    assert refused.json() == {"error": "invalid", "message": "n must be between 1 and 30"}
    with caplog.at_level(logging.ERROR):
        crashed = client.get("/crash")
    assert crashed.status_code == 500 and crashed.json()["error"] == "internal"
    assert "secret" not in crashed.text and "the secret internals" in caplog.text


def test_other_paths_and_other_methods_fall_through_to_the_app_behind(client: TestClient) -> None:
    assert client.get("/other").json() == {"answered_by": "behind"}
    assert client.post("/u/u42").status_code == 405  # the app behind answers the wrong method
    assert client.get("/nowhere").status_code == 404


def _front(*routes: Route) -> TestClient:
    return TestClient(FrontDoor(Starlette(routes=[Route("/{rest:path}", behind)]), list(routes), Metrics(), 1024),
                      raise_server_exceptions=False)  # fmt: skip


async def literal(request: Request) -> Response:
    return JSONResponse({"route": request.scope["route"].path, "params": request.path_params})


def test_a_path_is_matched_as_starlette_would_the_first_listed_route_winning() -> None:
    templates = ["/v1/users/me/home", "/v1/users/{user_id}/home", "/v1/users/{user_id}/next", "/v1/{a}/{b}/home"]
    client = _front(*(NamedRoute(path, literal) for path in templates))
    assert client.get("/v1/users/me/home").json() == {"route": "/v1/users/me/home", "params": {}}
    assert client.get("/v1/users/u1/home").json() == {"route": "/v1/users/{user_id}/home", "params": {"user_id": "u1"}}
    assert client.get("/v1/users/u1/next").json()["params"] == {"user_id": "u1"}
    assert client.get("/v1/x/y/home").json() == {"route": "/v1/{a}/{b}/home", "params": {"a": "x", "b": "y"}}
    # The same templates listed the other way round: the parameter's route now comes first and answers "me" too.
    flipped = _front(NamedRoute("/v1/users/{user_id}/home", literal), NamedRoute("/v1/users/me/home", literal))
    assert flipped.get("/v1/users/me/home").json()["route"] == "/v1/users/{user_id}/home"


@pytest.mark.parametrize("path", ["/v1/users//home", "/v1/users/u1/home/", "/v1/users/u1", "/v1/users/a/b/home",
                                  "/v1/users/u1/homes"])  # fmt: skip
def test_a_path_no_front_route_names_falls_through(path: str) -> None:
    client = _front(NamedRoute("/v1/users/{user_id}/home", literal))
    assert client.get(path).json() == {"answered_by": "behind"}


def test_paths_under_a_root_path_are_matched_without_it() -> None:
    client = TestClient(FrontDoor(Starlette(), [NamedRoute("/v1/users/{user_id}/home", literal)], Metrics(), 1024),
                        root_path="/api")  # fmt: skip
    assert client.get("/api/v1/users/u1/home").json()["params"] == {"user_id": "u1"}


def test_a_template_the_lookup_cannot_match_is_refused_when_the_router_is_built() -> None:
    for path in ("/v1/files/{path:path}", "/v1/items/{n:int}", "/v1/users/u-{user_id}"):
        with pytest.raises(ValueError, match="whole-segment string parameters"):
            FrontDoor(Starlette(), [NamedRoute(path, literal)], Metrics(), 1024)


async def named(request: Request) -> Response:
    return JSONResponse({"id": request_id.get()})


def test_every_request_is_named_limited_and_timed_whoever_answers_it() -> None:
    """A front route's answer gets the id in its headers without a wrapped ``send``, a request that goes on to the
    app behind through one; a refusal is named and timed too; each is timed under its template and status."""
    metrics = Metrics()
    behind_app = Starlette(routes=[Route("/behind", named), Route("/crash", crash)])
    front = [NamedRoute("/u/{user_id}", named), NamedRoute("/refuse", refuse)]
    client = TestClient(FrontDoor(behind_app, front, metrics, 1024), raise_server_exceptions=False)
    for path in ("/u/u1", "/behind"):
        got = client.get(path)
        assert got.status_code == 200 and got.json()["id"] == got.headers["x-request-id"], path
        given = client.get(path, headers={"X-Request-Id": "trace-0123456789"})
        assert given.json()["id"] == "trace-0123456789" == given.headers["x-request-id"], path
    assert client.get("/refuse").headers["x-request-id"]
    assert client.get("/crash").status_code == 500
    too_long = client.get("/u/" + "a" * 9000)
    too_large = client.post("/behind", content=b"x" * 2000)
    for refused, status in ((too_long, 414), (too_large, 413)):
        assert refused.status_code == status and refused.headers["x-request-id"]
    metrics.tally.flush()
    counts = {(s.labels["route"], s.labels["status"]): s.value for m in metrics.latency.collect() for s in m.samples
              if s.name.endswith("_count")}  # fmt: skip
    assert counts == {("/u/{user_id}", "200"): 2.0, ("/behind", "200"): 2.0, ("/refuse", "422"): 1.0,
                      ("/crash", "500"): 1.0, ("unmatched", "414"): 1.0, ("unmatched", "413"): 1.0}  # fmt: skip
