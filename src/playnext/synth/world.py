"""The simulated world: a catalog and listeners whose tastes are known, because we drew them.

Tastes live in a small latent space. Genres have embeddings; taste clusters are mixtures of genres; artists sit
near their genre, tracks near their artist. A listener belongs mainly to one cluster, partly to a second, drifts
week by week towards a third, and has favourite artists. Everything is drawn with one seeded generator, so the
same parameters give the same world, and the truth is saved beside the lake for later tests to check against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from playnext.durable import atomic_write

GENRES = (
    "pop", "rock", "hip hop", "electronic", "jazz", "classical", "indie", "metal",
    "r&b", "country", "latin", "folk", "reggae", "blues", "k-pop", "ambient",
)  # fmt: skip
GENRE_LANGUAGE = {"latin": "es", "k-pop": "ko"}
COUNTRIES = ("US", "GB", "DE", "SE", "BR", "MX", "FR", "JP", "IN", "KR")
COUNTRY_WEIGHTS = np.array([0.28, 0.1, 0.1, 0.05, 0.1, 0.08, 0.08, 0.07, 0.07, 0.07])
PODCAST_GENRES = ("news", "comedy", "true crime", "technology", "sports", "history", "science", "business")
_SYLLABLES = np.array(
    [
        "ka",
        "lo",
        "mi",
        "ra",
        "ven",
        "tor",
        "sil",
        "da",
        "ne",
        "po",
        "lu",
        "ri",
        "sa",
        "mo",
        "fa",
        "the",
        "ber",
        "gan",
        "dor",
        "el",
        "an",
        "is",
        "ul",
        "ko",
        "zy",
        "ma",
        "ri",
        "ta",
        "no",
        "ve",
    ]
)
DIM = 16
N_CLUSTERS = 12
N_FAVOURITES = 5


@dataclass(frozen=True)
class WorldParams:
    users: int
    tracks: int
    days: int
    seed: int = 7
    start: dt.date = dt.date(2026, 1, 1)

    def validate(self) -> None:
        if not 1 <= self.users <= 50_000_000:
            raise ValueError("users must be between 1 and 50,000,000")
        if not 20 <= self.tracks <= 50_000_000:
            raise ValueError("tracks must be between 20 and 50,000,000")
        if not 1 <= self.days <= 3660:
            raise ValueError("days must be between 1 and 3660")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _names(rng: np.random.Generator, n: int, syllables: int) -> np.ndarray:
    parts = _SYLLABLES[rng.integers(0, len(_SYLLABLES), size=(n, syllables))]
    joined = parts[:, 0].astype(object)
    for k in range(1, syllables):
        joined = joined + parts[:, k].astype(object)
    return np.char.capitalize(joined.astype(str))


@dataclass
class World:
    """Arrays indexed by entity number; ids are ``<prefix><number>`` (``t12``, ``u3``)."""

    params: WorldParams
    genre_vecs: np.ndarray  # (G, D)
    cluster_genres: np.ndarray  # (K, G) genre mixture of each taste cluster
    cluster_vecs: np.ndarray  # (K, D)
    artist_genre: np.ndarray  # (A,)
    artist_vecs: np.ndarray  # (A, D)
    artist_pop: np.ndarray  # (A,)
    artist_names: np.ndarray
    album_artist: np.ndarray  # (B,)
    album_release: np.ndarray  # (B,) days since epoch
    album_names: np.ndarray
    track_artist: np.ndarray  # (T,) sorted, so each artist's tracks are contiguous
    track_album: np.ndarray
    track_vecs: np.ndarray  # (T, D)
    track_pop: np.ndarray
    track_duration_ms: np.ndarray
    track_names: np.ndarray
    artist_track_start: np.ndarray  # (A,) first track of each artist
    artist_track_count: np.ndarray  # (A,)
    show_genre: np.ndarray  # (S,) index into PODCAST_GENRES
    show_names: np.ndarray
    episode_show: np.ndarray  # (E,) sorted
    episode_duration_ms: np.ndarray
    episode_release: np.ndarray
    show_episode_start: np.ndarray
    show_episode_count: np.ndarray
    book_genre: np.ndarray  # (Bk,) index into GENRES
    book_duration_ms: np.ndarray
    book_names: np.ndarray
    # listeners
    user_cluster: np.ndarray  # (U,) main cluster
    user_second: np.ndarray  # (U,) secondary cluster
    user_drift: np.ndarray  # (U,) cluster the listener drifts towards
    user_drift_rate: np.ndarray  # (U,) share of sessions moved to the drift cluster per week
    user_vecs: np.ndarray  # (U, D)
    user_favourites: np.ndarray  # (U, N_FAVOURITES) artist numbers
    user_country: np.ndarray  # (U,) index into COUNTRIES
    user_sessions_per_day: np.ndarray
    user_session_len: np.ndarray  # mean tracks per music session
    user_skip_bias: np.ndarray  # baseline tendency to skip
    user_peak_hour: np.ndarray
    user_podcast_share: np.ndarray  # share of sessions that are podcasts
    user_book_share: np.ndarray
    user_shows: np.ndarray  # (U, 3) followed shows

    def affinity(self, users: np.ndarray, tracks: np.ndarray) -> np.ndarray:
        """The hidden probability that a listener enjoys a track: the ground truth models should recover."""
        dot = np.einsum("ij,ij->i", self.user_vecs[users], self.track_vecs[tracks])
        fav = (self.user_favourites[users] == self.track_artist[tracks][:, None]).any(axis=1)
        return 1.0 / (1.0 + np.exp(-(4.0 * dot - 1.0 + 1.5 * fav)))


def build_world(params: WorldParams) -> World:
    params.validate()
    rng = np.random.default_rng(params.seed)
    G, K, D = len(GENRES), N_CLUSTERS, DIM
    genre_vecs = _unit(rng.normal(size=(G, D)))
    # Each cluster leans on one or two genres.
    cluster_genres = rng.dirichlet(np.full(G, 0.15), size=K)
    cluster_vecs = _unit(cluster_genres @ genre_vecs + 0.2 * rng.normal(size=(K, D)))

    n_artists = max(5, params.tracks // 8)
    genre_pop = rng.dirichlet(np.full(G, 2.0))
    artist_genre = rng.choice(G, size=n_artists, p=genre_pop)
    artist_vecs = _unit(genre_vecs[artist_genre] + 0.45 * rng.normal(size=(n_artists, D)))
    artist_pop = rng.lognormal(0.0, 1.3, size=n_artists)

    # Tracks per artist follow the artist's popularity; sorted by artist so an artist's tracks are a range.
    share = artist_pop / artist_pop.sum()
    track_artist = np.sort(rng.choice(n_artists, size=params.tracks, p=0.5 * share + 0.5 / n_artists))
    counts = np.bincount(track_artist, minlength=n_artists)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    albums_per_artist = np.maximum(1, np.ceil(counts / 10)).astype(np.int64)
    album_artist = np.repeat(np.arange(n_artists), albums_per_artist)
    album_start = np.concatenate([[0], np.cumsum(albums_per_artist)[:-1]])
    within = np.arange(params.tracks) - starts[track_artist]
    track_album = album_start[track_artist] + np.minimum(within // 10, albums_per_artist[track_artist] - 1)
    epoch_start = (params.start - dt.date(1970, 1, 1)).days
    album_release = epoch_start - rng.exponential(900.0, size=len(album_artist)).astype(np.int64)
    track_vecs = _unit(artist_vecs[track_artist] + 0.35 * rng.normal(size=(params.tracks, D)))
    track_pop = artist_pop[track_artist] * rng.lognormal(0.0, 0.8, size=params.tracks)
    track_duration = np.clip(rng.lognormal(np.log(210_000), 0.25, size=params.tracks), 60_000, 900_000)

    n_shows = max(3, params.tracks // 400)
    n_episodes = max(n_shows, params.tracks // 40)
    show_genre = rng.integers(0, len(PODCAST_GENRES), size=n_shows)
    episode_show = np.sort(np.concatenate([np.arange(n_shows), rng.integers(0, n_shows, n_episodes - n_shows)]))
    ep_counts = np.bincount(episode_show, minlength=n_shows)
    ep_starts = np.concatenate([[0], np.cumsum(ep_counts)[:-1]])
    episode_release = epoch_start + params.days - rng.integers(0, 365, size=n_episodes)
    n_books = max(2, params.tracks // 500)

    U = params.users
    user_cluster = rng.integers(0, K, size=U)
    user_second = (user_cluster + rng.integers(1, K, size=U)) % K
    user_drift = (user_cluster + rng.integers(1, K, size=U)) % K
    user_drift_rate = rng.uniform(0.0, 0.12, size=U)
    user_vecs = _unit(
        0.75 * cluster_vecs[user_cluster] + 0.25 * cluster_vecs[user_second] + 0.25 * rng.normal(size=(U, D))
    )
    favourites = _favourites(rng, user_vecs, artist_vecs, artist_pop * (counts > 0))
    user_shows = rng.integers(0, n_shows, size=(U, 3))

    return World(
        params=params,
        genre_vecs=genre_vecs,
        cluster_genres=cluster_genres,
        cluster_vecs=cluster_vecs,
        artist_genre=artist_genre,
        artist_vecs=artist_vecs,
        artist_pop=artist_pop,
        artist_names=_names(rng, n_artists, 2),
        album_artist=album_artist,
        album_release=album_release,
        album_names=_names(rng, len(album_artist), 3),
        track_artist=track_artist,
        track_album=track_album,
        track_vecs=track_vecs.astype(np.float32),
        track_pop=track_pop,
        track_duration_ms=track_duration.astype(np.int64),
        track_names=_names(rng, params.tracks, 3),
        artist_track_start=starts,
        artist_track_count=counts,
        show_genre=show_genre,
        show_names=_names(rng, n_shows, 2),
        episode_show=episode_show,
        episode_duration_ms=rng.integers(15, 120, size=n_episodes) * 60_000,
        episode_release=episode_release,
        show_episode_start=ep_starts,
        show_episode_count=ep_counts,
        book_genre=rng.integers(0, G, size=n_books),
        book_duration_ms=rng.integers(4, 20, size=n_books) * 3_600_000,
        book_names=_names(rng, n_books, 3),
        user_cluster=user_cluster,
        user_second=user_second,
        user_drift=user_drift,
        user_drift_rate=user_drift_rate,
        user_vecs=user_vecs.astype(np.float32),
        user_favourites=favourites,
        user_country=rng.choice(len(COUNTRIES), size=U, p=COUNTRY_WEIGHTS),
        user_sessions_per_day=rng.lognormal(np.log(1.2), 0.5, size=U),
        user_session_len=rng.uniform(5.0, 16.0, size=U),
        user_skip_bias=rng.beta(2.0, 5.0, size=U),
        user_peak_hour=rng.choice([8.0, 13.0, 18.5, 22.0], size=U) + rng.normal(0, 1.0, size=U),
        user_podcast_share=np.where(rng.random(U) < 0.35, rng.uniform(0.1, 0.4, size=U), 0.0),
        user_book_share=np.where(rng.random(U) < 0.1, rng.uniform(0.05, 0.2, size=U), 0.0),
        user_shows=user_shows,
    )


def _favourites(
    rng: np.random.Generator, user_vecs: np.ndarray, artist_vecs: np.ndarray, artist_pop: np.ndarray
) -> np.ndarray:
    """Each listener's favourite artists: drawn from a popularity-weighted pool, best-matching taste first."""
    U = len(user_vecs)
    pool_size = min(len(artist_vecs), 200)
    p = artist_pop / artist_pop.sum()
    out = np.empty((U, N_FAVOURITES), dtype=np.int64)
    block = 4096
    for lo in range(0, U, block):
        hi = min(U, lo + block)
        pool = rng.choice(len(artist_vecs), size=(hi - lo, pool_size), p=p)
        scores = np.einsum("ud,upd->up", user_vecs[lo:hi], artist_vecs[pool])
        take = min(N_FAVOURITES, pool_size)
        top = np.argsort(-scores, axis=1)[:, :take]
        chosen = np.take_along_axis(pool, top, axis=1)
        if take < N_FAVOURITES:
            chosen = np.pad(chosen, ((0, 0), (0, N_FAVOURITES - take)), mode="edge")
        out[lo:hi] = chosen
    return out


class Truth(msgspec.Struct):
    """What the saved world file says about itself; the arrays sit beside it in ``truth.npz``."""

    users: int
    tracks: int
    days: int
    seed: int
    start: dt.date
    genres: list[str]
    n_clusters: int


def save_world(world: World, directory: Path) -> None:
    """Save the parameters (the world is rebuilt from them) and the truth arrays later tests read directly."""
    directory.mkdir(parents=True, exist_ok=True)
    p = world.params
    info = Truth(
        users=p.users, tracks=p.tracks, days=p.days, seed=p.seed, start=p.start,
        genres=list(GENRES), n_clusters=N_CLUSTERS,
    )  # fmt: skip
    tmp = directory / ".truth.npz.tmp.npz"
    np.savez_compressed(
        tmp,
        user_cluster=world.user_cluster,
        user_second=world.user_second,
        user_drift=world.user_drift,
        user_vecs=world.user_vecs,
        user_favourites=world.user_favourites,
        track_vecs=world.track_vecs,
        track_artist=world.track_artist,
        cluster_genres=world.cluster_genres,
        artist_genre=world.artist_genre,
    )
    tmp.replace(directory / "truth.npz")
    atomic_write(directory / "world.json", msgspec.json.format(msgspec.json.encode(info)))


def load_world(directory: Path) -> World:
    path = directory / "world.json"
    if not path.exists():
        raise FileNotFoundError(f"no simulated world in {directory}; run `playnext simulate` first")
    info = msgspec.json.decode(path.read_bytes(), type=Truth)
    return build_world(
        WorldParams(users=info.users, tracks=info.tracks, days=info.days, seed=info.seed, start=info.start)
    )
