"""The JSON shape of a surface's answer, in one place: the routes build answers with it, and the batch renders
precomputed answers with it (``surfaces.rendered``), so the two can never drift apart."""

from __future__ import annotations

from typing import Any

from playnext.surfaces.page import Page


def list_body(shown: Page, request_id: str, variant: str | None, source: str, extra: dict[str, Any],
              variants: dict[str, str | None] | None = None) -> dict[str, Any]:  # fmt: skip
    """One shown list: ``variant`` is the single viewer's, ``variants`` every viewer's when there are several."""
    return {
        "request_id": request_id, "surface": shown.surface, "variant": variant, "model_version": shown.model_version,
        "fallback": shown.fallback or source == "fallback", "source": source, **extra, **shown.meta,
        **({"variants": variants} if variants is not None else {}),
        "items": shown.answer_items(),
    }  # fmt: skip


def mixes_body(user: str, model_version: str | None, source: str, mixes: list[dict[str, Any]]) -> dict[str, Any]:
    """Daily Mix's answer: its mixes (``list_body`` each), under the request id, variant and fallback flag they
    share."""
    first = mixes[0]
    return {
        "request_id": first["request_id"], "surface": "daily-mix", "user_id": user, "variant": first["variant"],
        "model_version": model_version, "fallback": first["fallback"], "source": source, "mixes": mixes,
    }  # fmt: skip


def listener_answer(surface: str, user: str, model_version: str | None, lists: list[Page], request_id: str,
                    variant: str | None, source: str) -> dict[str, Any]:  # fmt: skip
    """Discover Weekly's answer (its one list) or Daily Mix's (its mixes), for one listener."""
    bodies = [list_body(shown, request_id, variant, source, {"user_id": user}) for shown in lists]
    return mixes_body(user, model_version, source, bodies) if surface == "daily-mix" else bodies[0]
