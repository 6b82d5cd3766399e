"""Rate limits per key (429 with Retry-After) and size limits on every route (413, 414), as clear JSON errors."""

from __future__ import annotations

from fastapi.testclient import TestClient

from playnext.api.app import create_app
from playnext.api.keys import KeyStore
from playnext.api.limits import RateLimiter
from playnext.config import Settings


def test_a_token_bucket_allows_its_burst_then_paces() -> None:
    limiter = RateLimiter(default_per_s=10, burst_s=1.0)
    assert [limiter.allow("k", None) for _ in range(10)] == [0.0] * 10
    wait = limiter.allow("k", None)
    assert 0 < wait <= 0.1
    assert limiter.allow("other", None) == 0.0  # buckets are per key
    assert all(limiter.allow("free", 0) == 0.0 for _ in range(1000))  # 0: unlimited


def test_a_key_over_its_rate_gets_429_with_retry_after(settings: Settings) -> None:
    _, slow = KeyStore(settings.keys_file).create(["read"], rate_per_s=2)
    _, free = KeyStore(settings.keys_file).create(["read"], rate_per_s=0)
    with TestClient(create_app(settings)) as client:
        codes = [client.get("/v1/models", headers={"Authorization": f"Bearer {slow}"}).status_code for _ in range(8)]
        assert codes[:4] == [200] * 4 and codes[-1] == 429  # a burst of two seconds' worth, then paced
        limited = client.get("/v1/models", headers={"Authorization": f"Bearer {slow}"})
        assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        assert all(client.get("/v1/models", headers={"Authorization": f"Bearer {free}"}).status_code == 200
                   for _ in range(50))  # fmt: skip


def test_oversized_bodies_and_urls_are_refused_on_every_route(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(small)) as client:
        got = client.request("GET", "/healthz", content=b"x" * 5000)
        assert got.status_code == 413 and got.json()["error"] == "too_large"
        got = client.get("/v1/search?q=" + "a" * 9000)
        assert got.status_code == 414 and "limit" in got.json()["message"]
        assert "Traceback" not in got.text


def test_rates_are_validated_when_keys_are_made(settings: Settings) -> None:
    import pytest

    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="rate limit"):
            KeyStore(settings.keys_file).create(["read"], rate_per_s=bad)
