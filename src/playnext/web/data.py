"""What the dashboard plots: ingest over time, events by type, surface latency, model versions, experiments.

Ingest rate comes from samples of the service's own counters (``IngestSampler``, one every few seconds, a bounded
ring); events by type from the lake (what compaction has folded in, with DuckDB); latency from the request
histogram; model versions from their manifests (not re-hashed: a dashboard refresh must stay cheap).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from typing import Any

from playnext.api.observability import Metrics
from playnext.config import Settings

SAMPLES = 720  # an hour at one sample every 5 s


class IngestSampler:
    def __init__(self, metrics: Metrics, every_s: float = 5.0) -> None:
        self.metrics, self.every_s = metrics, every_s
        self.samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=SAMPLES)

    def _accepted(self) -> float:
        return sum(s.value for m in self.metrics.family("playnext_ingest_events") for s in m.samples
                   if s.name.endswith("_total") and s.labels.get("outcome") == "accepted")  # fmt: skip

    def sample(self) -> None:
        self.samples.append((time.time(), self._accepted()))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every_s)

    def rates(self) -> dict[str, list[float]]:
        points = list(self.samples)
        times, rates = [], []
        for (t0, a0), (t1, a1) in itertools.pairwise(points):
            times.append(t1)
            rates.append((a1 - a0) / max(t1 - t0, 1e-9))
        return {"t": times, "events_per_s": rates}


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """A quantile from cumulative (upper bound, count) histogram buckets, interpolated within the bucket."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    target, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= target:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((target - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def latency(metrics: Metrics) -> list[dict[str, Any]]:
    buckets: dict[str, dict[float, float]] = collections.defaultdict(dict)
    for family in metrics.family("playnext_http_request_duration_seconds"):
        for s in family.samples:
            if s.name.endswith("_bucket") and s.labels["route"].startswith(("/v1/users", "/v1/blend", "/v1/search")):
                route, bound = s.labels["route"], float(s.labels["le"])
                buckets[route][bound] = buckets[route].get(bound, 0.0) + s.value
    out = []
    for route, by_bound in sorted(buckets.items()):
        cumulative = sorted(by_bound.items())
        p50, p99 = _quantile(cumulative, 0.5), _quantile(cumulative, 0.99)
        out.append(
            {
                "route": route,
                "requests": cumulative[-1][1],
                "p50_ms": None if p50 is None else p50 * 1000,
                "p99_ms": None if p99 is None else p99 * 1000,
            }
        )
    return out  # fmt: skip


def events_by_type(settings: Settings) -> dict[str, int]:
    from playnext.lake.query import connect

    try:
        rows = connect(settings).execute("SELECT type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC").fetchall()
    except Exception:  # no events compacted yet: an empty chart, not a broken dashboard
        return {}
    return {str(t): int(n) for t, n in rows}


def model_versions(settings: Settings, served: str | None) -> list[dict[str, Any]]:
    from playnext.models.registry import Registry, RegistryError

    registry = Registry(settings)
    out = []
    for version_id in registry.ids():
        try:
            manifest = registry.manifest(version_id)
        except RegistryError:
            continue
        ndcg = None
        for report in manifest.get("metrics") or []:
            ndcg = (report.get("metrics", {}).get("all", {}) or {}).get("ndcg@20", ndcg)
        out.append({"id": version_id, "created": manifest.get("created"), "ndcg@20": ndcg,
                    "generators": manifest.get("generators"), "served": version_id == served})  # fmt: skip
    return out


def experiments(settings: Settings) -> list[dict[str, Any]]:
    """Running experiments with the verdict and effects of their last recorded analysis."""
    from playnext.experiments.analysis import BrokenState, latest_analysis

    out = []
    for name, exp in sorted(settings.experiments.items()):
        if not exp.running:
            continue
        try:
            last = latest_analysis(settings, name) or {}
        except BrokenState as exc:
            last = {"verdict": "unreadable analysis", "reasons": [str(exc)]}
        verdict = last.get("verdict", "not analysed yet") + (f" {last['variant']}" if last.get("variant") else "")
        effects = [
            {"label": f"{name} {r['variant']}/{r['metric']}", "relative": r["relative"], "low": r["ci_relative"][0],
             "high": r["ci_relative"][1], "role": r["role"]}
            for r in last.get("results", []) if r["role"] != "secondary" and r["relative"] is not None
        ]  # fmt: skip
        out.append({"name": name, "layer": exp.layer, "traffic": exp.traffic, "variants": sorted(exp.variants),
                    "verdict": verdict, "as_of": last.get("as_of"), "reasons": last.get("reasons", []),
                    "listeners": last.get("listeners", {}), "effects": effects})  # fmt: skip
    return out
