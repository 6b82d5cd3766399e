"""The closed loop: simulated listeners react to what a served surface shows them.

Later stages (experiments, off-policy evaluation) need an environment that answers a recommendation the way the
hidden tastes say it should, so that a better policy measurably wins. A listener looks at a shown item with a
probability that falls with its position, and then plays, skips or saves it by the same hidden affinity that made
the organic history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from playnext.events.schema import Event, Impression, Play, Save, Skip
from playnext.synth.world import World


@dataclass(frozen=True)
class Responses:
    examined: np.ndarray
    streamed: np.ndarray  # played past 30 s
    skipped: np.ndarray
    saved: np.ndarray
    ms_played: np.ndarray


def _numbers(ids: list[str], prefix: str, limit: int) -> np.ndarray:
    """``t12`` -> 12; anything not of this world -> -1."""
    out = np.full(len(ids), -1, dtype=np.int64)
    for i, value in enumerate(ids):
        tail = value[len(prefix) :]
        if value.startswith(prefix) and tail.isdigit() and int(tail) < limit:
            out[i] = int(tail)
    return out


class Listeners:
    def __init__(self, world: World, seed: int = 0) -> None:
        self.world = world
        self.rng = np.random.default_rng(seed)

    def chances(self, users: np.ndarray, tracks: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, ...]:
        """(P(examined), P(skipped | examined), affinity) of each shown item: what ``respond`` draws from."""
        affinity = self.world.affinity(users, tracks)
        skip_p = np.clip(0.03 + 0.9 * (1.0 - affinity) * (0.4 + self.world.user_skip_bias[users]), 0.0, 0.97)
        return 1.0 / np.sqrt(1.0 + positions), skip_p, affinity

    def expected_streams(self, users: np.ndarray, tracks: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The chance each shown item is streamed: the exact mean of ``respond(...).streamed``."""
        examine_p, skip_p, _ = self.chances(users, tracks, positions)
        return examine_p * (1.0 - skip_p)

    def respond(self, users: np.ndarray, tracks: np.ndarray, positions: np.ndarray) -> Responses:
        """Reactions to ``tracks[i]`` shown to ``users[i]`` at ``positions[i]`` (0 = top)."""
        w, rng = self.world, self.rng
        n = len(users)
        examine_p, skip_p, affinity = self.chances(users, tracks, positions)
        examined = rng.random(n) < examine_p
        skipped = examined & (rng.random(n) < skip_p)
        played = examined & ~skipped
        duration = w.track_duration_ms[tracks]
        ms = np.where(played, duration, np.where(skipped, rng.integers(1_000, 30_000, n), 0))
        saved = played & (rng.random(n) < 0.12 * affinity**2)
        return Responses(examined=examined, streamed=played, skipped=skipped, saved=saved, ms_played=ms)

    def respond_events(
        self,
        user_id: str,
        item_ids: list[str],
        *,
        request_id: str,
        surface: str,
        at: dt.datetime,
        variant: str | None = None,
        propensities: list[float] | None = None,
    ) -> list[Event]:
        """Impressions for a served list and the listener's reactions to it, as events to post to the collector."""
        tracks = _numbers(item_ids, "t", len(self.world.track_artist))
        user = _numbers([user_id], "u", len(self.world.user_vecs))[0]
        events: list[Event] = [
            Impression(
                event_id=f"{request_id}-imp-{pos}",
                user_id=user_id,
                ts=at,
                item_id=item,
                item_type="track",
                surface=surface,
                position=pos,
                request_id=request_id,
                variant=variant,
                propensity=propensities[pos] if propensities else None,
            )
            for pos, item in enumerate(item_ids)
        ]
        known = np.flatnonzero(tracks >= 0)
        if user < 0 or len(known) == 0:
            return events
        r = self.respond(np.full(len(known), user), tracks[known], known)
        clock = at
        for j, pos in enumerate(known):
            item = item_ids[pos]
            common = {"user_id": user_id, "item_id": item, "item_type": "track", "request_id": request_id}
            if r.streamed[j]:
                events.append(Play(event_id=f"{request_id}-play-{pos}", ts=clock, ms_played=int(r.ms_played[j]),
                                   reason_end="trackdone", **common))  # fmt: skip
            elif r.skipped[j]:
                events.append(Skip(event_id=f"{request_id}-skip-{pos}", ts=clock, ms_played=int(r.ms_played[j]),
                                   **common))  # fmt: skip
            if r.saved[j]:
                events.append(Save(event_id=f"{request_id}-save-{pos}", ts=clock, **common))
            clock = clock + dt.timedelta(milliseconds=int(r.ms_played[j]) + 1_500)
        return events
