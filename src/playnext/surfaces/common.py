"""What every surface shares: the list it answers, reasons, the cold-start fallback, caps and weekly seeds."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import numpy as np

from playnext.index.ann import AnnIndexed
from playnext.models.base import CandidateModel, normalize_rows
from playnext.models.factorization import VectorModel
from playnext.models.popularity import Popularity
from playnext.models.registry import ModelVersion


# msgspec structs rather than dataclasses: precomputed lists are stored in the online store as MessagePack, and
# array-like structs encode and decode several times faster (and smaller) than dicts. Not tracked by the garbage
# collector (``gc=False``: strings and numbers only, no cycle possible): answers decode thousands of them a second.
class Pick(msgspec.Struct, frozen=True, array_like=True, gc=False):
    item_id: str
    item_type: str
    score: float
    reason: str
    serves: tuple[str, ...] = ()  # Blend: whose taste the item is for


class SurfaceList(msgspec.Struct, array_like=True):
    surface: str
    items: list[Pick]
    # True when the list came from popularity because the listener (or a dependency) had nothing better.
    fallback: bool
    model_version: str | None
    meta: dict[str, Any] = {}


def unwrap(model: CandidateModel) -> CandidateModel:
    return model.model if isinstance(model, AnnIndexed) else model


def generator(version: ModelVersion, cls: type) -> CandidateModel | None:
    for model in version.recommender.generators.values():
        if isinstance(unwrap(model), cls):
            return unwrap(model)
    return None


def popularity(version: ModelVersion) -> Popularity | None:
    """The segment popularity model (by country when trained), for cold starts and failing dependencies."""
    found = [unwrap(m) for m in version.recommender.generators.values() if isinstance(unwrap(m), Popularity)]
    by_country = [m for m in found if m.params["segment"] == "country" and not m.params["trending"]]
    overall = [m for m in found if m.params["segment"] == "global" and not m.params["trending"]]
    return (by_country or overall or found or [None])[0]


def fallback_scores(version: ModelVersion, country: str | None) -> np.ndarray:
    model = popularity(version)
    if model is None:
        return np.log1p(version.recommender.side_.popularity).astype(np.float32)
    return model.segment_scores(np.array([model.segment_of(country)]))[0]


def popular_order(version: ModelVersion, country: str | None) -> np.ndarray:
    """Every item, most popular in the listener's segment first; sorted once per version and segment, since cold
    listeners and fallbacks ask for it on every request."""
    model = popularity(version)
    segment = model.segment_of(country) if model is not None else 0
    return version.derive(
        f"popular_order/{segment}", lambda: np.argsort(-fallback_scores(version, country), kind="stable")
    )


def genres(version: ModelVersion) -> np.ndarray:
    """Item genres as ``str`` (the catalog keeps objects), converted once per version."""
    return version.derive("genres", lambda: version.data.meta.genre.astype(str))


def item_vectors(version: ModelVersion) -> np.ndarray | None:
    """Unit item vectors of the first vector model (ALS first): what "because you played X" compares."""

    def unit() -> np.ndarray | None:  # normalized once per version, not per request
        models = sorted((unwrap(m) for m in version.recommender.generators.values()), key=lambda m: m.name != "als")
        vectors = [normalize_rows(m.item_vectors()) for m in models if isinstance(m, VectorModel)]
        return vectors[0] if vectors else None

    return version.derive("unit_item_vectors", unit)


def because(version: ModelVersion, history: np.ndarray, items: np.ndarray, default: str) -> list[str]:
    """For each item, "because you played X" with X the most similar item of the listener's ``history``."""
    vectors = item_vectors(version)
    if vectors is None or not len(history) or not len(items):
        return [default] * len(items)
    best = np.argmax(vectors[items] @ vectors[history].T, axis=1)
    names = version.data.meta.name
    return [f"because you played {names[history[b]]}" for b in best]


def cap_per_creator(items: np.ndarray, creators: np.ndarray, cap: int, n: int) -> np.ndarray:
    """The first ``n`` of ``items`` (in order) with at most ``cap`` per creator."""
    taken: dict[str, int] = {}
    out = []
    for item in items.tolist():
        creator = creators[item]
        if taken.get(creator, 0) >= cap:
            continue
        taken[creator] = taken.get(creator, 0) + 1
        out.append(item)
        if len(out) == n:
            break
    return np.array(out, dtype=np.int64)


def seed_of(*parts: object) -> int:
    """A stable seed from request parts (listener, ISO week…): the same inputs give the same list."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def picks(version: ModelVersion, items: np.ndarray, scores: np.ndarray, reasons: list[str]) -> list[Pick]:
    """Scores are rounded to 6 decimals here, once per list in NumPy, not per item of every answer; ids and types
    are taken as Python strings in one call each, not converted item by item."""
    data, items = version.data, np.asarray(items, dtype=np.int64)
    rounded = np.round(np.asarray(scores, dtype=np.float64), 6).tolist()
    ids, kinds = data.items[items].tolist(), data.meta.item_type[items].tolist()
    return [Pick(i, t, s, r) for i, t, s, r in zip(ids, kinds, rounded, reasons, strict=True)]
