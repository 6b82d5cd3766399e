"""Experiment metrics from the lake: one row per exposed listener, each metric's numerator and denominator after
the listener's first exposure and in the ``pre_days`` before it (the CUPED covariate).

A listener is exposed when an impression carries their experiment's label ("experiment:variant", from
``experiments.assignment``); their variant is the one those impressions name. Listeners whose impressions name
two variants of one experiment are an assignment fault: they are counted and left out, never guessed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from playnext.config import Settings
    from playnext.experiments.statistics import Sample


@dataclass(frozen=True)
class Metric:
    higher_is_better: bool
    ratio: bool  # per event (a rate over the listener's own counts) rather than per listener
    about: str


METRICS: dict[str, Metric] = {
    "streams": Metric(True, False, "plays past the stream threshold, per listener"),
    "minutes": Metric(True, False, "minutes listened, per listener"),
    "saves": Metric(True, False, "saves, per listener"),
    "skips": Metric(False, False, "skips, per listener"),
    "return_rate": Metric(True, False, "share of listeners who listen again on a later day"),
    "skip_rate": Metric(False, True, "skips per started track (plays and skips)"),
    "stream_rate": Metric(True, True, "shown items streamed, per impression"),
    "reward": Metric(True, True, "the models' reward (settings.models.reward) per impression"),
}
REWARD_PREFIX = "reward:"  # "reward:long_term": any configured reward, per impression


def metric(name: str) -> Metric:
    if name.startswith(REWARD_PREFIX):
        return Metric(True, True, f"reward {name[len(REWARD_PREFIX) :]} per impression")
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)} or reward:NAME")
    return METRICS[name]


def _columns(name: str) -> tuple[str, str]:
    return f"{name}__num", f"{name}__den"


@dataclass
class ListenerMetrics:
    """Per exposed listener: variant, exposure time and every requested metric, post and pre."""

    table: pa.Table
    conflicting: int  # listeners whose impressions name more than one variant (left out)

    def counts(self) -> dict[str, int]:
        values, counts = np.unique(self.table["variant"].to_numpy(zero_copy_only=False).astype(str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts, strict=True)}

    def sample(self, name: str, variant: str) -> Sample:
        from playnext.experiments.statistics import Sample

        rows = self.table["variant"].to_numpy(zero_copy_only=False).astype(str) == variant
        num, den = _columns(name)

        def col(c: str) -> np.ndarray:
            return np.asarray(self.table[c].to_numpy(zero_copy_only=False), float)[rows]

        return Sample(col(num), col(den), col("pre__" + num), col("pre__" + den))


def _reward_columns(settings: Settings, names: list[str], start: dt.datetime, end: dt.datetime) -> pa.Table:
    """The experiment window's impressions with each reward's value: (user_id, ts, streamed, <reward>...)."""
    from playnext.models.data import load_impression_outcomes
    from playnext.rewards.definitions import register_reward

    outcomes = load_impression_outcomes(settings, start, end)
    out = {
        "user_id": outcomes["user_id"],
        "ts": outcomes["ts"],
        "streamed": outcomes["streamed"].cast(pa.float64()),
    }
    for name in names:
        reward_name = name[len(REWARD_PREFIX) :] if name.startswith(REWARD_PREFIX) else settings.models.reward
        out[name] = pa.array(register_reward(settings, reward_name).value(outcomes), pa.float64())
    return pa.table(out)


def listener_metrics(
    settings: Settings, experiment: str, names: list[str], as_of: dt.datetime, pre_days: float = 14.0
) -> ListenerMetrics:
    from playnext.lake.query import connect

    for name in names:
        metric(name)
    con = connect(settings)
    pre = dt.timedelta(days=pre_days)
    label = f"(?:^|,){experiment}:([^,]+)"
    con.execute(
        """
        CREATE TEMP TABLE labelled AS
        SELECT user_id, min(ts) AS exposed_at, min(v) AS variant, count(DISTINCT v) AS variants FROM (
            SELECT user_id, ts, regexp_extract(variant, $label, 1) AS v FROM events
            WHERE type = 'impression' AND variant IS NOT NULL AND ts < $end
        ) WHERE v <> '' GROUP BY user_id
        """,
        {"label": label, "end": as_of},
    )
    conflicting = con.execute("SELECT count(*) FROM labelled WHERE variants > 1").fetchone()[0]  # type: ignore[index]
    start = con.execute("SELECT min(exposed_at) FROM labelled").fetchone()[0]  # type: ignore[index]
    threshold = settings.pipelines.stream_threshold_ms
    con.execute(
        """
        CREATE TEMP TABLE acts AS
        SELECT x.user_id,
            count(*) FILTER (post AND type = 'play' AND ms >= $threshold) AS streams,
            count(*) FILTER (NOT post AND type = 'play' AND ms >= $threshold) AS pre_streams,
            coalesce(sum(ms) FILTER (post AND type = 'play'), 0) / 60000.0 AS minutes,
            coalesce(sum(ms) FILTER (NOT post AND type = 'play'), 0) / 60000.0 AS pre_minutes,
            count(*) FILTER (post AND type = 'save') AS saves,
            count(*) FILTER (NOT post AND type = 'save') AS pre_saves,
            count(*) FILTER (post AND type = 'skip') AS skips,
            count(*) FILTER (NOT post AND type = 'skip') AS pre_skips,
            count(*) FILTER (post AND type IN ('play', 'skip')) AS started,
            count(*) FILTER (NOT post AND type IN ('play', 'skip')) AS pre_started,
            coalesce(bool_or(post AND type = 'play' AND ts >= x.exposed_at + INTERVAL 1 DAY), false)::INT
                AS returned,
            coalesce(bool_or(NOT post AND type = 'play'), false)::INT AS pre_returned
        FROM labelled x JOIN (
            SELECT user_id, type, ts, coalesce(ms_played, 0) AS ms FROM events
            WHERE type IN ('play', 'skip', 'save') AND ts < $end
        ) e ON e.user_id = x.user_id,
        LATERAL (SELECT e.ts >= x.exposed_at AS post)
        WHERE x.variants = 1 AND e.ts >= x.exposed_at - $pre
        GROUP BY x.user_id
        """,
        {"threshold": threshold, "end": as_of, "pre": pre},
    )
    per_impression = [n for n in names if metric(n).ratio and n != "skip_rate"]
    rewards = [n for n in per_impression if n != "stream_rate"]
    if per_impression and start is not None:
        shown = _reward_columns(settings, rewards, start - pre, as_of)
    else:  # nobody exposed yet: the same columns, no rows
        fields = [("user_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("streamed", pa.float64())]
        shown = pa.schema(fields + [(n, pa.float64()) for n in rewards]).empty_table()
    con.register("shown", shown)
    sums = ", ".join(
        f'sum(CASE WHEN s.ts >= x.exposed_at THEN "{c}" ELSE 0 END) AS "{c}", '
        f'sum(CASE WHEN s.ts < x.exposed_at THEN "{c}" ELSE 0 END) AS "pre__{c}"'
        for c in ["streamed", *rewards]
    )
    con.execute(
        f"""CREATE TEMP TABLE imps AS SELECT x.user_id,
            count(*) FILTER (s.ts >= x.exposed_at) AS shown, count(*) FILTER (s.ts < x.exposed_at) AS pre_shown,
            {sums}
        FROM labelled x JOIN shown s ON s.user_id = x.user_id
        WHERE x.variants = 1 AND s.ts >= x.exposed_at - $pre GROUP BY x.user_id""",
        {"pre": pre},
    )

    def expr(name: str) -> list[str]:
        num, den = _columns(name)
        if name == "skip_rate":
            parts = {"": ("skips", "started"), "pre__": ("pre_skips", "pre_started")}
        elif name == "return_rate":
            parts = {"": ("returned", "1"), "pre__": ("pre_returned", "1")}
        elif name == "stream_rate":
            parts = {"": ("i.streamed", "i.shown"), "pre__": ("i.pre__streamed", "i.pre_shown")}
        elif metric(name).ratio:
            parts = {"": (f'i."{name}"', "i.shown"), "pre__": (f'i."pre__{name}"', "i.pre_shown")}
        else:
            parts = {"": (name, "1"), "pre__": (f"pre_{name}", "1")}
        return [
            f'coalesce({n}, 0)::DOUBLE AS "{prefix}{num}", coalesce({d}, 0)::DOUBLE AS "{prefix}{den}"'
            for prefix, (n, d) in parts.items()
        ]

    select = ", ".join(part for name in names for part in expr(name))
    table = con.sql(
        f"""SELECT x.user_id, x.variant, x.exposed_at{", " + select if select else ""}
        FROM labelled x LEFT JOIN acts a ON a.user_id = x.user_id LEFT JOIN imps i ON i.user_id = x.user_id
        WHERE x.variants = 1 ORDER BY x.user_id"""
    ).to_arrow_table()
    con.close()
    return ListenerMetrics(table=table, conflicting=int(conflicting))
