"""``DELETE /v1/users/{id}`` (admin): forget a listener everywhere (see ``playnext.privacy.forget``)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request

from playnext.api.auth import scope_dependency
from playnext.api.errors import ApiError
from playnext.api.routes.surfaces import user_id_of
from playnext.privacy.forget import forget_user

router = APIRouter(dependencies=[Depends(scope_dependency("admin"))], tags=["operations"])


@router.delete("/v1/users/{user_id}", summary="Delete everything playnext holds about a listener")
async def delete_user(request: Request, user_id: str) -> dict[str, Any]:
    user = user_id_of(user_id)
    state = request.app.state
    async with state.forget_lock:  # one at a time: each rewrites the lake's files
        try:
            report = await asyncio.to_thread(forget_user, state.settings, user, state.store, event_log=state.event_log)
        except OSError as exc:
            raise ApiError(503, "storage_error", f"the deletion could not finish, retry it: {exc}") from None
    if report.model_versions:
        await asyncio.to_thread(state.model.reload)
    state.pending_lists.clear()
    return dataclasses.asdict(report)
