"""Home: shelves of cards, ordered by a contextual bandit, with no item on two shelves.

Shelves: Made for you (Daily Mix cards), Because you listened to X (neighbours of the listener's latest liked
track), Podcasts and audiobooks, New releases (tracks out in the last ``NEW_DAYS`` days, from the listener's
artists or genres first), Artists you might like, and Popular in your country. Their order comes from
``surfaces.bandit`` for the listener's segment; shelves are then filled in that order, each skipping items an
earlier shelf already shows. Empty shelves are left out; a new listener gets the shelves that need no history.
"""

from __future__ import annotations

import msgspec
import numpy as np

from playnext.models.item_item import Cooccurrence
from playnext.models.registry import ModelVersion
from playnext.surfaces import daily_mix
from playnext.surfaces.bandit import ShelfStats, heavy_from, order_shelves, segment_of
from playnext.surfaces.common import Pick, SurfaceList, generator, genres, item_vectors, picks, popular_order
from playnext.surfaces.daily_mix import daily_mixes

NEW_DAYS = 60
NEW_POOL = 2000
SPOKEN = ("episode", "audiobook")
POOL = 300


class Shelf(msgspec.Struct, array_like=True):
    id: str
    title: str
    items: list[Pick]
    propensity: float = 1.0


def shelf_as_list(shelf: Shelf, model_version: str) -> SurfaceList:
    """A shelf in the form the online store keeps lists in (see ``list_as_shelf``)."""
    return SurfaceList(f"home/{shelf.id}", shelf.items, False, model_version, {"title": shelf.title})


def list_as_shelf(stored: SurfaceList) -> Shelf:
    return Shelf(stored.surface.removeprefix("home/"), str(stored.meta["title"]), stored.items)


class HomePage(msgspec.Struct):
    shelves: list[Shelf]
    segment: str
    fallback: bool
    model_version: str


def _new_releases(version: ModelVersion) -> np.ndarray:
    """Tracks out in the last ``NEW_DAYS`` days, the ``NEW_POOL`` most popular of them: the shelf orders these by
    the listener's artists and genres, and a catalog can release tens of thousands in two months."""
    meta = version.data.meta
    fresh = np.flatnonzero((meta.item_type == "track") & (meta.release_days >= 0) & (meta.release_days <= NEW_DAYS))
    popularity = version.recommender.side_.popularity[fresh]
    return fresh[np.argsort(-popularity, kind="stable")[:NEW_POOL]]


def _alike(version: ModelVersion, seed: int, pool: np.ndarray, n: int) -> np.ndarray:
    """Tracks like ``seed``: its co-occurrence neighbours, then the listener's candidates closest to it in item
    vectors (a neighbour search over the whole catalog per listener was a fifth of a batch's time)."""
    kind = version.data.meta.item_type
    graph = generator(version, Cooccurrence)
    items = np.zeros(0, np.int64)
    if graph is not None:
        row = graph.weights_[seed]
        items = row.indices[np.argsort(-row.data, kind="stable")].astype(np.int64)
        items = items[(kind[items] == "track") & (items != seed)][:n]
    vectors = item_vectors(version)
    if len(items) < n and vectors is not None:
        more = pool[(kind[pool] == "track") & (pool != seed) & ~np.isin(pool, items)]
        more = more[np.argsort(-(vectors[more] @ vectors[seed]), kind="stable")]
        items = np.concatenate([items, more[: n - len(items)]])
    return items


def shelves(
    version: ModelVersion, user_id: str, *, size: int = 10, country: str | None = None,
    candidates: np.ndarray | None = None,
) -> dict[str, Shelf]:  # fmt: skip
    """Every shelf the listener could see, in no order, each with up to ``3 × size`` cards so that the page can
    still fill a shelf after dropping what a shelf above it shows. The part worth precomputing."""
    data = version.data
    row = data.user_row(user_id)
    kind, creator, genre = data.meta.item_type, data.meta.creator, genres(version)
    if row >= 0:
        if candidates is None:  # ranked once for the shelves and the Daily Mix cards
            candidates = version.recommender.recommend(np.array([row]), max(POOL, daily_mix.POOL)).items[0]
        cands = candidates[candidates >= 0][:POOL]
    else:
        cands = popular_order(version, country)[:POOL]
    history = data.sequence(row) if row >= 0 else np.zeros(0, np.int64)
    out: dict[str, Shelf] = {}
    if row >= 0:
        mixes = daily_mixes(version, user_id, size=1, candidates=candidates)
        out["made-for-you"] = Shelf("made-for-you", "Made for you", [
            Pick(item_id=f"daily-mix-{m.meta['mix']}", item_type="mix", score=1.0, reason=str(m.meta["name"]))
            for m in mixes
        ])  # fmt: skip
    liked_tracks = history[kind[history] == "track"] if len(history) else history
    if len(liked_tracks):
        seed = int(liked_tracks[-1])
        items = _alike(version, seed, cands, size * 3)
        name = data.meta.name[seed]
        out["because-you-listened"] = Shelf(
            "because-you-listened",
            f"Because you listened to {name}",
            picks(version, items, np.zeros(len(items)), [f"because you listened to {name}"] * len(items)),
        )
    spoken = cands[np.isin(kind[cands], SPOKEN)]
    if not len(spoken):
        pop = popular_order(version, country)
        spoken = version.derive(f"popular_spoken/{country}", lambda: pop[np.isin(kind[pop], SPOKEN)][:POOL])
        spoken = spoken[: size * 3]
    out["podcasts-and-books"] = Shelf(
        "podcasts-and-books",
        "Podcasts and audiobooks for you",
        picks(version, spoken, np.zeros(len(spoken)), ["picked for you"] * len(spoken)),
    )
    fresh = version.derive("new_releases", lambda: _new_releases(version))
    if len(fresh):
        mine_c, mine_g = set(creator[history].tolist()), set(genre[history].tolist())
        own = np.isin(creator[fresh], list(mine_c))
        liked_genre = np.isin(genre[fresh], list(mine_g))
        popularity = version.recommender.side_.popularity[fresh]
        order = np.lexsort((-popularity, ~liked_genre, ~own))
        fresh = fresh[order][: size * 3]
        reasons = [
            f"new from {creator[i]}, whom you listen to" if creator[i] in mine_c
            else (f"new in {genre[i]}" if genre[i] in mine_g else "new this season")
            for i in fresh.tolist()
        ]  # fmt: skip
        out["new-releases"] = Shelf("new-releases", "New releases for you", picks(version, fresh, np.zeros(len(fresh)),
                                                                                   reasons))  # fmt: skip
    known = set(creator[history].tolist())
    artists = [c for c in dict.fromkeys(creator[cands[kind[cands] == "track"]].tolist()) if c and c not in known]
    out["artists"] = Shelf("artists", "Artists you might like", [
        Pick(item_id=c, item_type="artist", score=0.0, reason="plays like what you listen to" if row >= 0
             else "popular with listeners like you") for c in artists[: size * 3]
    ])  # fmt: skip
    popular = popular_order(version, country)
    popular = version.derive(f"popular_tracks/{country}", lambda: popular[kind[popular] == "track"][:POOL])
    popular = popular[: size * 3]
    title = f"Popular in {country}" if country else "Popular right now"
    out["popular"] = Shelf(
        "popular",
        title,
        picks(version, popular, np.zeros(len(popular)), ["popular with listeners like you"] * len(popular)),
    )
    return out


def home(
    version: ModelVersion, user_id: str, stats: ShelfStats, rng: np.random.Generator, *, size: int = 10,
    country: str | None = None, available: dict[str, Shelf] | None = None,
) -> HomePage:  # fmt: skip
    """The page: ``available`` shelves (precomputed, else computed now) in the bandit's order, no card twice."""
    data = version.data
    row = data.user_row(user_id)
    segment = segment_of(int(data.matrix.indptr[row + 1] - data.matrix.indptr[row]) if row >= 0 else 0,
                         heavy_from(version))  # fmt: skip
    if available is None:
        available = shelves(version, user_id, size=size, country=country)
    order, propensity = order_shelves(stats, segment, list(available), rng)
    used: set[tuple[str, str]] = set()
    page = []
    for shelf_id, p in zip(order, propensity.tolist(), strict=True):
        shelf = available[shelf_id]
        fresh = [c for c in shelf.items if (c.item_type, c.item_id) not in used][:size]
        used.update((c.item_type, c.item_id) for c in fresh)
        if fresh:
            page.append(Shelf(shelf.id, shelf.title, fresh, p))
    return HomePage(page, segment, row < 0, version.id)
