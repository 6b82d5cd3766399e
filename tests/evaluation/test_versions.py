"""A version trained on everything is evaluated forward, on what listeners did after it was trained."""

from __future__ import annotations

import datetime as dt

from playnext.config import Settings
from playnext.datasets.movielens import import_movielens
from playnext.evaluation.offline import evaluate_version
from playnext.models.registry import Registry
from playnext.models.training import train_version
from tests.pipelines.lake import ev, write_events


def test_forward_evaluation_uses_only_events_after_the_training_data(settings: Settings) -> None:
    import_movielens(settings)
    s = settings.model_copy(update={"models": settings.models.model_copy(
        update={"generators": ["popularity", "ease"], "ranker": False})})  # fmt: skip
    version_id, run, reports = train_version(s, None)
    assert reports == []  # no cutoff: nothing held out at training time
    registry = Registry(s)
    assert evaluate_version(s, registry.load(version_id)) == []  # and nothing has happened since
    as_of = run.data.as_of
    minutes = (as_of - dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)).total_seconds() / 60
    # Two known listeners fully watch movies they had never rated, a day after the training data ends.
    write_events(s, [
        ev("play", "later-1", "ml1", "m1500", minutes + 1440, ms_played=7_200_000, reason_end="trackdone"),
        ev("play", "later-2", "ml2", "m1650", minutes + 1441, ms_played=7_200_000, reason_end="trackdone"),
        ev("skip", "later-3", "ml3", "m60", minutes + 1442, ms_played=1_000),
    ])  # fmt: skip
    (report,) = evaluate_version(s, registry.load(version_id))
    assert report.name == version_id and report.users["all"] == 2
    assert report.users["new"] == 0
