"""Listening events from a world's hidden tastes, generated a block of listeners at a time, without row loops.

A listener's day is a Poisson number of sessions around their peak hour (more at weekends). A session is music,
podcast or audiobook. A music session draws all its tracks from one taste cluster (main, secondary, or, more so as
weeks pass, the drift cluster), from favourite artists, or from the charts; whether a track is skipped, finished,
saved or added to a playlist follows the hidden affinity. So sessions carry co-occurrence, skips carry taste, and a
model that recovers the clusters and favourites does measurably better than popularity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playnext.events.schema import ARROW_SCHEMA
from playnext.synth.world import COUNTRIES, N_CLUSTERS, N_FAVOURITES, World

DAY_MS = 86_400_000
_TYPES = ("play", "skip", "save", "playlist_add", "follow", "search")
_REASONS = ("trackdone", "fwdbtn", "endplay")
# item kinds: code -> (id prefix, item_type)
_KINDS = (("t", "track"), ("ep", "episode"), ("ab", "audiobook"), ("ar", "artist"))
# Expected events per listener-day; sizes the blocks so each holds about two million events.
EVENTS_PER_USER_DAY = 17.0


@dataclass
class Samplers:
    """Cumulative distributions drawn from once per world, reused by every block."""

    cluster_cdf: np.ndarray  # (K, T)
    chart_cdf: np.ndarray  # (T,)

    @classmethod
    def of(cls, world: World) -> Samplers:
        pop = world.track_pop**0.7
        logits = 6.0 * (world.cluster_vecs @ world.track_vecs.T.astype(np.float64))
        weights = pop[None, :] * np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(weights, axis=1)
        cdf /= cdf[:, -1:]
        chart = np.cumsum(world.track_pop)
        return cls(cluster_cdf=cdf, chart_cdf=chart / chart[-1])


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def session_cluster(world: World, users: np.ndarray, days: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Which taste a session follows: drift grows week by week, then main or secondary taste."""
    drift = np.minimum(0.6, world.user_drift_rate[users] * days / 7.0)
    second = drift + (1.0 - drift) * 0.3
    return np.where(
        u < drift, world.user_drift[users], np.where(u < second, world.user_second[users], world.user_cluster[users])
    )


def music_tracks(
    world: World, samplers: Samplers, users: np.ndarray, clusters: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    n = len(users)
    source = rng.random(n)
    tracks = np.empty(n, dtype=np.int64)
    fav = source < 0.3
    chart = (source >= 0.3) & (source < 0.36)
    taste = source >= 0.36
    if fav.any():
        artists = world.user_favourites[users[fav], rng.integers(0, N_FAVOURITES, fav.sum())]
        offset = (rng.random(fav.sum()) * world.artist_track_count[artists]).astype(np.int64)
        tracks[fav] = world.artist_track_start[artists] + offset
    if chart.any():
        tracks[chart] = _draw(samplers.chart_cdf, rng.random(chart.sum()))
    for c in range(N_CLUSTERS):
        pick = taste & (clusters == c)
        if pick.any():
            tracks[pick] = _draw(samplers.cluster_cdf[c], rng.random(pick.sum()))
    return tracks


def _ids(prefix: str | pa.Array, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _labels(codes: np.ndarray, labels: tuple[str, ...], valid: np.ndarray | None = None) -> pa.Array:
    arr = pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), mask=None if valid is None else ~valid), pa.array(labels)
    )
    return arr.cast(pa.string())


def block_events(
    world: World, samplers: Samplers, users: np.ndarray, rng: np.random.Generator, first_event: int
) -> pa.Table:
    """Every event of the listeners in ``users`` over the whole period, as one Arrow table in the lake schema."""
    p = world.params
    n_days = p.days
    start_ms = int(dt.datetime.combine(p.start, dt.time(), dt.UTC).timestamp() * 1000)
    weekday = np.array([(p.start + dt.timedelta(days=d)).weekday() for d in range(n_days)])
    day_factor = np.where(weekday >= 5, 1.3, 1.0)

    # Sessions.
    counts = rng.poisson(world.user_sessions_per_day[users][:, None] * day_factor[None, :])
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    s_user = users[cell // n_days]
    s_day = cell % n_days
    n_sessions = len(s_user)
    hour = np.mod(world.user_peak_hour[s_user] + rng.normal(0.0, 2.0, n_sessions), 24.0)
    s_start = start_ms + s_day * DAY_MS + (hour * 3_600_000).astype(np.int64)
    kind_u = rng.random(n_sessions)
    podcast_share = world.user_podcast_share[s_user]
    s_kind = np.where(kind_u < podcast_share, 1, np.where(kind_u < podcast_share + world.user_book_share[s_user], 2, 0))
    length = np.where(
        s_kind == 0,
        rng.geometric(1.0 / world.user_session_len[s_user]),
        np.where(s_kind == 1, 1 + (rng.random(n_sessions) < 0.3), 1),
    )
    s_cluster = session_cluster(world, s_user, s_day, rng.random(n_sessions))

    # Plays: one row per item started in a session.
    session = np.repeat(np.arange(n_sessions), length)
    n = len(session)
    user = s_user[session]
    kind = s_kind[session]
    item = np.zeros(n, dtype=np.int64)
    duration = np.zeros(n, dtype=np.int64)
    music = kind == 0
    item[music] = music_tracks(world, samplers, user[music], s_cluster[session][music], rng)
    duration[music] = world.track_duration_ms[item[music]]
    pod = kind == 1
    if pod.any():
        shows = world.user_shows[user[pod], rng.integers(0, world.user_shows.shape[1], pod.sum())]
        back = np.minimum(rng.geometric(0.5, pod.sum()) - 1, world.show_episode_count[shows] - 1)
        item[pod] = world.show_episode_start[shows] + world.show_episode_count[shows] - 1 - back
        duration[pod] = world.episode_duration_ms[item[pod]]
    book = kind == 2
    if book.any():
        item[book] = (user[book] * 7919) % len(world.book_duration_ms)
        duration[book] = world.book_duration_ms[item[book]]

    # Engagement, from the hidden affinity for music and a steady habit for spoken word.
    affinity = np.full(n, 0.8)
    affinity[music] = world.affinity(user[music], item[music])
    skip_p = np.clip(0.03 + 0.9 * (1.0 - affinity) * (0.4 + world.user_skip_bias[user]), 0.0, 0.97)
    skip_p[~music] = 0.05
    skipped = rng.random(n) < skip_p
    finished = ~skipped & (rng.random(n) < np.where(music, 0.85, 0.2))
    ms = np.where(
        skipped,
        rng.integers(1_000, 30_000, n),
        np.where(finished, duration, (rng.uniform(0.15, 0.95, n) * duration).astype(np.int64)),
    )
    ms = np.where(kind == 2, np.minimum(ms, rng.integers(10, 90, n) * 60_000), ms)
    ms = np.maximum(np.minimum(ms, duration), 1_000)
    reason = np.where(skipped, 1, np.where(finished, 0, 2))

    # Time: each item starts when the previous one in its session stopped (plus a short gap).
    spent = ms + 1_500
    before = np.cumsum(spent) - spent
    first_of_session = np.concatenate([[0], np.cumsum(length)[:-1]])
    ts = s_start[session] + before - before[first_of_session][session]

    enjoyed = music & ~skipped
    saves = enjoyed & (rng.random(n) < 0.12 * affinity**2)
    adds = enjoyed & (rng.random(n) < 0.05 * affinity**2)
    is_fav = (world.user_favourites[user] == world.track_artist[item][:, None]).any(axis=1) & music
    follows = enjoyed & is_fav & (rng.random(n) < 0.01)
    searches_at = np.flatnonzero((s_kind == 0) & (rng.random(n_sessions) < 0.08))

    parts: list[dict[str, np.ndarray]] = []
    parts.append(
        {
            "type": np.where(skipped, 1, 0),
            "user": user,
            "ts": ts,
            "kind": kind,
            "item": item,
            "ms": ms,
            "reason": reason,
            "has_ms": np.ones(n, bool),
        }
    )
    for mask, code, delay in ((saves, 2, 5_000), (adds, 3, 8_000)):
        parts.append(
            {
                "type": np.full(mask.sum(), code),
                "user": user[mask],
                "ts": ts[mask] + delay,
                "kind": kind[mask],
                "item": item[mask],
            }
        )
    parts.append(
        {
            "type": np.full(follows.sum(), 4),
            "user": user[follows],
            "ts": ts[follows] + 9_000,
            "kind": np.full(follows.sum(), 3),
            "item": world.track_artist[item[follows]],
        }
    )
    if len(searches_at):
        s_users = s_user[searches_at]
        fav_artist = world.user_favourites[s_users, 0]
        parts.append(
            {
                "type": np.full(len(searches_at), 5),
                "user": s_users,
                "ts": s_start[searches_at] - 20_000,
                "kind": np.zeros(len(searches_at), np.int64),
                "item": world.artist_track_start[fav_artist],
                "query": fav_artist,
            }
        )
    return _to_arrow(world, parts, first_event)


def _to_arrow(world: World, parts: list[dict[str, np.ndarray]], first_event: int) -> pa.Table:
    def cat(key: str, fill: int = 0) -> np.ndarray:
        return np.concatenate([p[key] if key in p else np.full(len(p["user"]), fill) for p in parts])

    etype = cat("type")
    user = cat("user")
    kind = cat("kind")
    item = cat("item")
    n = len(etype)
    has_ms = cat("has_ms").astype(bool)
    prefixes = _labels(kind, tuple(k[0] for k in _KINDS))
    query_artist = cat("query", -1)
    is_search = etype == 5
    queries = pa.nulls(n, pa.string())
    if is_search.any():
        names = np.asarray(world.artist_names, dtype=object)[np.where(is_search, query_artist, 0)]
        queries = pa.array(np.char.lower(names.astype(str)), mask=~is_search)
    playlist = pa.nulls(n, pa.string())
    is_add = etype == 3
    if is_add.any():
        owners = np.where(is_add, user, 0)
        playlist = pc.if_else(pa.array(is_add), _ids(pa.scalar("pl-u"), owners), pa.scalar(None, pa.string()))
    columns = {
        "event_id": _ids(pa.scalar(f"sim{world.params.seed}-"), np.arange(first_event, first_event + n)),
        "type": _labels(etype, _TYPES),
        "user_id": _ids(pa.scalar("u"), user),
        "ts": pa.array(cat("ts") * 1000, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "item_id": _ids(prefixes, item),
        "item_type": _labels(kind, tuple(k[1] for k in _KINDS)),
        "country": _labels(world.user_country[user], COUNTRIES),
        "request_id": pa.nulls(n, pa.string()),
        "ms_played": pa.array(cat("ms"), pa.int64(), mask=~has_ms),
        "reason_end": _labels(cat("reason"), _REASONS, valid=has_ms & (etype == 0)),
        "playlist_id": playlist,
        "query": queries,
        "surface": pa.nulls(n, pa.string()),
        "position": pa.nulls(n, pa.int32()),
        "variant": pa.nulls(n, pa.string()),
        "propensity": pa.nulls(n, pa.float64()),
    }
    return pa.table(columns, schema=ARROW_SCHEMA)
