"""``DELETE /v1/users/{id}`` (admin): forget a listener everywhere (see ``playnext.privacy.forget``)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request

from playnext.api.auth import scope_dependency
from playnext.api.errors import ApiError
from playnext.api.routes.surfaces import user_id_of
from playnext.online.store import StoreUnavailable
from playnext.privacy.forget import forget_user

router = APIRouter(dependencies=[Depends(scope_dependency("admin"))], tags=["operations"])


@router.delete("/v1/users/{user_id}", summary="Delete everything playnext holds about a listener")
async def delete_user(request: Request, user_id: str) -> dict[str, Any]:
    user = user_id_of(user_id)
    state = request.app.state
    async with state.forget_lock:  # one at a time: each rewrites the lake's files
        try:
            report = await asyncio.to_thread(forget_user, state.settings, user, state.store, event_log=state.event_log)
            # Plays accepted before the tombstone may have been on their way to the sessions meanwhile (new ones
            # of the forgotten past are dropped): let them land, then clear the listener's plays once more.
            await state.session_feed.settled()
            await asyncio.to_thread(state.store.forget, user)
        except (OSError, RuntimeError, StoreUnavailable) as exc:
            # A full disk, a pipeline committing to a feature table at the same moment, a store that is down:
            # every step is safe to repeat, and the tombstone already keeps the listener's past out.
            raise ApiError(503, "retry", f"the deletion could not finish; it is safe to send again: {exc}") from None
    if report.model_versions:
        await asyncio.to_thread(state.model.refresh, True)
    state.pending_lists.clear()
    return dataclasses.asdict(report)
