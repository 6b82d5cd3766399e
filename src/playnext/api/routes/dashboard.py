"""``/dashboard`` (the page: no data, no key needed) and ``/v1/dashboard`` (its data: admin scope)."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse

from playnext.api.auth import scope_dependency
from playnext.web import data

router = APIRouter(tags=["operations"])
PAGE = resources.files("playnext.web") / "dashboard.html"


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/dashboard", include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text())


@router.get("/dashboard/plotly.min.js", include_in_schema=False)
async def plotly_js() -> FileResponse:
    return FileResponse(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


@router.get("/v1/dashboard", summary="What the dashboard plots", dependencies=[Depends(scope_dependency("admin"))])
async def dashboard_data(request: Request) -> dict[str, Any]:
    state = request.app.state
    version = state.model.version
    served = version.id if version is not None else None
    types, models = await asyncio.gather(
        asyncio.to_thread(data.events_by_type, state.settings),
        asyncio.to_thread(data.model_versions, state.settings, served),
    )
    return {
        "served": served,
        "ingest": state.ingest_sampler.rates(),
        "events_by_type": types,
        "latency": data.latency(state.metrics),
        "models": models,
        "experiments": data.experiments(state.settings),
    }
