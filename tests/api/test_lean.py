"""Lean routes: declared query parameters are checked with clear 422s and described in the OpenAPI spec."""

from __future__ import annotations

import pytest

from playnext.api.errors import ApiError
from playnext.api.lean import LeanGet, Param, openapi_paths


def test_integers_are_parsed_and_bounded() -> None:
    n = Param("n", int, 20, 1, 100)
    assert (n.parse(None), n.parse("7"), n.parse("100")) == (20, 7, 100)
    for bad, message in [("0", "between 1 and 100"), ("101", "between 1 and 100"), ("x", "must be an integer"),
                         ("1e3", "must be an integer"), ("", "must be an integer")]:  # fmt: skip
        with pytest.raises(ApiError, match=message) as got:
            n.parse(bad)
        assert got.value.status == 422


def test_strings_are_capped_and_required_ones_enforced() -> None:
    q = Param("q", max_length=5)
    assert q.parse("abc") == "abc"
    with pytest.raises(ApiError, match="longer than 5"):
        q.parse("abcdef")
    with pytest.raises(ApiError, match="'q' is required"):
        q.parse(None)
    assert Param("country", default=None).parse(None) is None


def test_the_spec_carries_every_bound() -> None:
    async def handler(request, user_id, n):  # type: ignore[no-untyped-def]
        raise AssertionError

    spec = openapi_paths([LeanGet("/v1/users/{user_id}/x", handler, "X", [Param("n", int, 20, 1, 100)])])
    get = spec["/v1/users/{user_id}/x"]["get"]
    assert get["parameters"][0] == {"name": "user_id", "in": "path", "required": True,
                                    "schema": {"type": "string", "maxLength": 128}}  # fmt: skip
    assert get["parameters"][1]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert get["security"] == [{"bearer": []}] and {"401", "403", "422", "503"} <= set(get["responses"])
