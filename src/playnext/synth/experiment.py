"""The experiment loop closed in memory: simulated listeners are assigned by the real ``Assigner``, each variant's
policy picks what they are shown, and they react by their hidden tastes (``synth.respond``).

Thousands of simulated experiments (A/A false-positive rates, A/B power, sample-ratio faults, off-policy
coverage) need this loop to cost milliseconds, so it stays in NumPy: a policy ranks a candidate pool by the
listener's true affinity blurred with noise, and a better policy is simply a less blurred one. The effect of a
treatment is therefore built in and known in advance, which is what the acceptance tests measure the analysis
against. Listeners arrive one after another, so a look at the first n of them is exactly what an analysis sees
part-way through an experiment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from playnext.evaluation.off_policy import position_propensities
from playnext.experiments.assignment import Assigner
from playnext.experiments.definitions import Experiment
from playnext.experiments.statistics import Sample
from playnext.synth.respond import Listeners
from playnext.synth.world import World

# The per-listener columns a run produces, each with a ``pre_`` twin from the sessions before exposure.
COLUMNS = ("shown", "streams", "skips", "saves", "minutes")


@dataclass(frozen=True)
class Policy:
    """Shows the ``list_size`` tracks of a random candidate pool with the highest affinity plus Gaussian noise of
    scale ``noise``: the less noise, the better the policy knows the listener."""

    noise: float


@dataclass
class Outcome:
    variants: np.ndarray  # per listener in arrival order; "" outside the experiment
    values: dict[str, np.ndarray]  # COLUMNS and pre_COLUMNS

    def sample(self, metric: str, variant: str, first: int | None = None) -> Sample:
        """The listeners of ``variant`` among the first ``first`` to arrive, as the analysis would see them."""
        rows = self.variants[:first] == variant
        v = {k: a[:first][rows] for k, a in self.values.items()}
        if metric == "skip_rate":
            return Sample(v["skips"], v["streams"] + v["skips"], v["pre_skips"], v["pre_streams"] + v["pre_skips"])
        if metric == "stream_rate":
            return Sample(v["streams"], v["shown"], v["pre_streams"], v["pre_shown"])
        return Sample.of_means(v[metric], v["pre_" + metric])

    def counts(self, first: int | None = None) -> dict[str, int]:
        names, counts = np.unique(self.variants[:first], return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True) if n}


class ExperimentLoop:
    def __init__(self, world: World, *, list_size: int = 10, pool: int = 100, days: float = 3.0,
                 pre_days: float = 3.0, seed: int = 0) -> None:  # fmt: skip
        self.world, self.list_size, self.pool = world, list_size, pool
        self.days, self.pre_days = days, pre_days
        self.rng = np.random.default_rng(seed)
        self.listeners = Listeners(world, seed=seed + 1)

    def show(self, users: np.ndarray, policy: Policy) -> np.ndarray:
        """(len(users), list_size) tracks the policy shows each listener in one session."""
        n_tracks = len(self.world.track_artist)
        pools = self.rng.integers(0, n_tracks, size=(len(users), self.pool))
        affinity = self.world.affinity(np.repeat(users, self.pool), pools.ravel()).reshape(pools.shape)
        scores = affinity + policy.noise * self.rng.standard_normal(pools.shape)
        top = np.argsort(-scores, axis=1)[:, : self.list_size]
        return np.take_along_axis(pools, top, axis=1)

    def session(self, users: np.ndarray, policy: Policy) -> dict[str, np.ndarray]:
        shown = self.show(users, policy)
        k = shown.shape[1]
        positions = np.tile(np.arange(k), len(users))
        r = self.listeners.respond(np.repeat(users, k), shown.ravel(), positions)

        def per_user(x: np.ndarray) -> np.ndarray:
            return x.reshape(len(users), k).sum(axis=1).astype(float)

        return {
            "shown": np.full(len(users), float(k)),
            "streams": per_user(r.streamed),
            "skips": per_user(r.skipped),
            "saves": per_user(r.saved),
            "minutes": per_user(np.where(r.streamed, r.ms_played, 0)) / 60_000.0,
        }

    def streams_effect(self, better: Policy, than: Policy, listeners: int = 50_000) -> float:
        """The true difference in expected streams per listener over the experiment between two policies: exact
        stream chances (no reaction noise), the same listeners for both, so the effect a test should find is
        known to a fraction of a percent."""
        users = self.rng.choice(len(self.world.user_vecs), size=listeners)
        k = self.list_size
        positions = np.tile(np.arange(k), listeners)
        per_session = [
            self.listeners.expected_streams(np.repeat(users, k), self.show(users, p).ravel(), positions)
            .reshape(listeners, k).sum(axis=1)
            for p in (better, than)
        ]  # fmt: skip
        sessions = self.world.user_sessions_per_day[users] * self.days
        return float(np.mean(sessions * (per_session[0] - per_session[1])))

    def run(
        self, experiment: Experiment, name: str, policies: dict[str, Policy], listeners: int, *,
        control_policy: Policy | None = None, lose_exposure: dict[str, float] | None = None,
    ) -> Outcome:  # fmt: skip
        """``listeners`` listeners (drawn from the world, in arrival order) through the pre-period under
        ``control_policy`` and then the experiment. ``lose_exposure`` drops that share of a variant's listeners
        from the logs, the way a client that fails to log one variant's impressions breaks the sample ratio."""
        population = len(self.world.user_vecs)
        users = self.rng.choice(population, size=listeners, replace=listeners > population)
        assigner = Assigner({name: experiment})
        variants = np.array([_variant(assigner, f"u{u}-{i}", name) for i, u in enumerate(users)], dtype=object)
        control_policy = control_policy or policies[experiment.control_variant]
        values = {c: np.zeros(listeners) for c in COLUMNS} | {f"pre_{c}": np.zeros(listeners) for c in COLUMNS}
        # Heavy listeners come back more often, before and after exposure alike: the covariate CUPED exploits.
        rate = self.world.user_sessions_per_day[users]
        for prefix, days, chosen in (("pre_", self.pre_days, None), ("", self.days, variants)):
            sessions = self.rng.poisson(rate * days)
            for variant, policy in policies.items() if chosen is not None else [("", control_policy)]:
                mine = np.ones(listeners, bool) if chosen is None else chosen == variant
                for s in range(int(sessions.max(initial=0))):
                    rows = np.flatnonzero(mine & (sessions > s))
                    for c, v in self.session(users[rows], policy).items():
                        values[prefix + c][rows] += v
        for variant, share in (lose_exposure or {}).items():
            lost = (variants == variant) & (self.rng.random(listeners) < share)
            variants[lost] = ""
        return Outcome(variants=variants.astype(str), values=values)


def _variant(assigner: Assigner, user_id: str, name: str) -> str:
    for a in assigner.assign(user_id):
        if a.experiment == name:
            return a.variant
    return ""


@dataclass
class LoggedSlates:
    """Lists a logging policy showed (with exploration) and what listeners did, one row per (request, position),
    plus what a target re-ranker would have shown in the same requests."""

    requests: np.ndarray
    positions: np.ndarray
    reward: np.ndarray  # streamed
    logging: np.ndarray  # P(this item at this position) under the logging policy
    target: np.ndarray  # the same under the target policy
    logging_score: np.ndarray  # the logging ranker's score of the row's item: a feature for reward models
    target_score_rows: np.ndarray  # per request and target position: the logging score of the item put there


def slates(loop: ExperimentLoop, requests: int, logging: Policy, target: Policy, epsilon: float) -> LoggedSlates:
    """The logging policy ranks the pool, keeps its top ``list_size`` and with probability ``epsilon`` shuffles
    them; the target re-ranks those same items by its own (less or more noisy) view of the listener."""
    k = loop.list_size
    users = loop.rng.choice(len(loop.world.user_vecs), size=requests)
    shown_items, log_scores, target_scores = _candidates(loop, users, logging, target)
    explore = loop.rng.random(requests) < epsilon
    order = np.tile(np.arange(k), (requests, 1))
    order[explore] = loop.rng.permuted(order[explore], axis=1)
    items = np.take_along_axis(shown_items, order, axis=1)  # what was shown at each position
    ranks = order  # the logging rank of the item at each position
    target_rank = np.argsort(np.argsort(-np.take_along_axis(target_scores, order, axis=1), axis=1), axis=1)
    positions = np.tile(np.arange(k), requests)
    r = loop.listeners.respond(np.repeat(users, k), items.ravel(), positions)
    target_order = np.argsort(-target_scores, axis=1)
    return LoggedSlates(
        requests=np.repeat(np.arange(requests), k), positions=positions, reward=r.streamed.astype(float),
        logging=position_propensities(ranks, epsilon).ravel(),
        target=(target_rank == np.arange(k)).astype(float).ravel(),
        logging_score=np.take_along_axis(log_scores, order, axis=1).ravel(),
        target_score_rows=np.take_along_axis(log_scores, target_order, axis=1),
    )  # fmt: skip


def _candidates(loop: ExperimentLoop, users: np.ndarray, logging: Policy,
                target: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The logging policy's top list per request (best first), its scores, and the target's scores of it."""
    pools = loop.rng.integers(0, len(loop.world.track_artist), size=(len(users), loop.pool))
    affinity = loop.world.affinity(np.repeat(users, loop.pool), pools.ravel()).reshape(pools.shape)
    log_scores = affinity + logging.noise * loop.rng.standard_normal(pools.shape)
    top = np.argsort(-log_scores, axis=1)[:, : loop.list_size]
    items = np.take_along_axis(pools, top, axis=1)
    chosen_affinity = np.take_along_axis(affinity, top, axis=1)
    target_scores = chosen_affinity + target.noise * loop.rng.standard_normal(items.shape)
    return items, np.take_along_axis(log_scores, top, axis=1), target_scores


def policy_value(loop: ExperimentLoop, requests: int, logging: Policy, target: Policy) -> float:
    """The target's true value: run it on fresh requests and average the streams its lists get."""
    k = loop.list_size
    users = loop.rng.choice(len(loop.world.user_vecs), size=requests)
    items, _, target_scores = _candidates(loop, users, logging, target)
    shown = np.take_along_axis(items, np.argsort(-target_scores, axis=1), axis=1)
    r = loop.listeners.respond(np.repeat(users, k), shown.ravel(), np.tile(np.arange(k), requests))
    return float(r.streamed.sum() / requests)
