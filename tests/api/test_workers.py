"""What a serving worker's app shares out with the other workers (``api.workers``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from playnext.api.app import SURFACE_THREADS, create_app
from playnext.config import Settings


@pytest.mark.parametrize(("workers", "threads"), [(1, SURFACE_THREADS), (2, SURFACE_THREADS // 2), (8, 1)])
def test_the_surface_threads_are_shared_out_among_workers(settings: Settings, workers: int, threads: int) -> None:
    with TestClient(create_app(settings.model_copy(update={"workers": workers}))) as client:
        assert client.app.state.surface_threads._max_workers == threads  # type: ignore[attr-defined]
