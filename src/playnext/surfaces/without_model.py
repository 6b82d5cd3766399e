"""Lists when no model version is served (a fresh install, every version refused): the lake's most played items.

A surface then still answers, flagged ``fallback``, instead of failing: the listener gets what is popular, the
client keeps working, and the exposure is logged like any other. Search matches catalog titles without taste.
Queries run at most once a minute.
"""

from __future__ import annotations

import threading
import time

from playnext.config import Settings
from playnext.surfaces.common import Pick, SurfaceList

TTL_S = 60.0
POPULAR = 500


class LakeFallback:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._at = -TTL_S
        self._popular: list[Pick] = []
        self._titles: tuple[list[str], list[str], list[str]] = ([], [], [])

    def _refresh(self) -> None:
        from playnext.lake.query import connect

        with self._lock:
            if time.monotonic() - self._at < TTL_S:
                return
            try:
                con = connect(self.settings)
                rows = con.execute(
                    "SELECT item_id, any_value(item_type), count(*) AS plays FROM events WHERE type = 'play' "
                    f"GROUP BY item_id ORDER BY plays DESC, item_id LIMIT {POPULAR}"
                ).fetchall()
                tracks = con.execute("SELECT id, name FROM tracks").fetchall()
            except Exception:  # an empty lake (no events table yet) has nothing popular: empty lists, not errors
                rows, tracks = [], []
            self._popular = [Pick(str(i), str(t), float(n), "popular right now") for i, t, n in rows]
            self._titles = ([str(i) for i, _ in tracks], ["track"] * len(tracks), [str(n) for _, n in tracks])
            self._at = time.monotonic()

    def popular(self, surface: str, n: int) -> SurfaceList:
        self._refresh()
        return SurfaceList(surface, self._popular[:n], True, None, {})

    def search(self, query: str, n: int) -> SurfaceList:
        from rapidfuzz import fuzz, process, utils

        self._refresh()
        ids, kinds, names = self._titles
        found = process.extract(query, names, scorer=fuzz.WRatio, processor=utils.default_process, limit=n,
                                score_cutoff=50)  # fmt: skip
        items = [Pick(ids[i], kinds[i], score / 100.0, f"matches “{query}”") for _, score, i in found]
        return SurfaceList("search", items, True, None, {"query": query})
