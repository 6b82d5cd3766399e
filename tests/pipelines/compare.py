"""Comparing feature tables made different ways (engines, incremental runs): same rows, floats within tolerance."""

from __future__ import annotations

import math

import pyarrow as pa

from playnext.config import Settings
from playnext.pipelines.runner import feature_table

KEYS = {
    "user_item_affinity": ["user_id", "item_id", "item_type"],
    "sessions": ["session_id"],
    "item_cooccurrence": ["item_id", "neighbour_id"],
    "item_stats": ["item_id", "item_type"],
    "artist_stats": ["artist_id"],
    "user_profile": ["user_id", "facet", "key"],
    "outcomes": ["impression_id"],
}


def canonical(table: pa.Table, keys: list[str]) -> list[dict]:
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: tuple("" if r[k] is None else str(r[k]) for k in keys))


def assert_same_table(a: Settings, b: Settings, name: str, rel: float = 1e-9) -> None:
    ta, tb = feature_table(a, name).read(), feature_table(b, name).read()
    assert ta is not None and tb is not None, name
    assert ta.column_names == tb.column_names, (name, ta.column_names, tb.column_names)
    ra, rb = canonical(ta, KEYS[name]), canonical(tb, KEYS[name])
    assert len(ra) == len(rb), (name, len(ra), len(rb))
    for x, y in zip(ra, rb, strict=True):
        for column in ta.column_names:
            u, v = x[column], y[column]
            if isinstance(u, float) and isinstance(v, float):
                assert math.isclose(u, v, rel_tol=rel, abs_tol=1e-12), (name, column, x, y)
            else:
                assert u == v, (name, column, x, y)
