"""Versions are immutable, promotion is atomic, damaged versions are refused while the current one serves."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from playnext.config import Settings
from playnext.models.generators import build_generator
from playnext.models.recommender import Recommender
from playnext.models.registry import CorruptVersion, Registry, RegistryError, UnknownVersion
from playnext.models.served import ServedModel
from playnext.privacy.forget import scrub_models
from tests.models.small import two_tastes


def _publish(registry: Registry, l2: float = 10.0) -> str:
    data = two_tastes()
    rec = Recommender({"popularity": build_generator("popularity"), "ease": build_generator("ease", {"l2": l2})})
    rec.fit(data)
    return registry.publish(rec, data, {"generators": ["popularity", "ease"], "note": f"l2={l2}"})


def test_publish_promote_rollback(settings: Settings) -> None:
    registry = Registry(settings)
    a, b = _publish(registry, 10.0), _publish(registry, 20.0)
    assert registry.current_id() is None
    registry.promote(a)
    registry.promote(b)
    assert registry.current_id() == b
    manifest = registry.manifest(b)
    assert manifest["note"] == "l2=20.0" and manifest["code_version"] and "recommender/params.json" in manifest["files"]
    assert registry.rollback() == a and registry.current_id() == a
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback()
    statuses = {v["id"]: v["status"] for v in registry.list()}
    assert statuses == {a: "served", b: "ok"}


def test_a_loaded_version_recommends_like_the_trained_one(settings: Settings) -> None:
    registry = Registry(settings)
    version = registry.load(_publish(registry))
    data = two_tastes()
    users = version.data.user_index(["u0", "u30", "stranger"])
    assert users.tolist() == [0, 30, -1]
    got = version.recommender.recommend(users, 5)
    assert (got.items >= 0).all()
    assert not set(got.items[0].tolist()) & set(data.matrix[0].indices.tolist())


def test_a_damaged_version_is_refused_with_the_file_named(settings: Settings) -> None:
    registry = Registry(settings)
    version = _publish(registry)
    target = settings.models_dir / "versions" / version / "recommender" / "generators" / "ease" / "state.npz"
    with open(target, "r+b") as fh:
        fh.truncate(os.path.getsize(target) // 2)
    with pytest.raises(CorruptVersion, match=r"state\.npz does not match its checksum"):
        registry.promote(version)
    assert registry.current_id() is None
    assert "corrupt" in registry.list()[0]["status"]


def test_a_version_without_manifest_is_incomplete(settings: Settings) -> None:
    registry = Registry(settings)
    version = _publish(registry)
    (settings.models_dir / "versions" / version / "manifest.json").unlink()
    with pytest.raises(CorruptVersion, match="incomplete"):
        registry.load(version)
    with pytest.raises(UnknownVersion):
        registry.promote("../../etc")


def test_a_crash_while_publishing_leaves_no_version(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(settings)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("playnext.models.registry.save_interactions", boom)
    with pytest.raises(OSError, match="disk full"):
        _publish(registry)
    assert registry.list() == []
    assert not list(settings.models_dir.glob(".staging-*"))


def test_the_served_model_follows_the_pointer_and_keeps_serving_through_a_bad_version(settings: Settings) -> None:
    registry = Registry(settings)
    good, bad = _publish(registry), _publish(registry, 30.0)
    served = ServedModel(registry)
    assert not served.refresh() and served.version is None  # nothing promoted yet
    registry.promote(good)
    assert served.refresh() and served.version.id == good
    assert not served.refresh()  # pointer unchanged: nothing reloaded
    # Damage the second version after it was verified, then point at it by hand (as a torn deploy would).
    os.remove(settings.models_dir / "versions" / bad / "data" / "items.parquet")
    (settings.models_dir / "CURRENT").write_text(json.dumps({"version": bad, "history": [good]}))
    assert not served.refresh()
    assert served.version.id == good and "items.parquet is missing" in served.error
    got = served.version.recommender.recommend(np.array([0]), 3)
    assert (got.items >= 0).all()


def test_each_version_is_prepared_as_it_loads_before_it_serves(settings: Settings) -> None:
    registry = Registry(settings)
    first, second = _publish(registry), _publish(registry, 20.0)
    prepared: list[tuple[str, bool]] = []
    served = ServedModel(registry, prepare=lambda v: prepared.append((v.id, served.version is v)))
    registry.promote(first)
    assert served.refresh() and served.pinned(second).id == second
    assert prepared == [(first, False), (second, False)]  # the served one before it was swapped in
    served.pinned(second)
    assert len(prepared) == 2  # once per load


def test_every_server_loads_again_a_version_scrubbed_in_place(settings: Settings) -> None:
    """A listener forgotten through one worker (or replica) is scrubbed from the version's files; the others hold
    that version in memory, with no new promotion to notice, and must not go on answering from it."""
    registry = Registry(settings)
    registry.promote(_publish(registry))
    this, other = ServedModel(registry), ServedModel(registry)
    assert this.refresh() and other.refresh()
    user = str(other.version.data.users[0])
    assert scrub_models(settings, user, "2026-11-26T10:00:00+00:00") == [registry.current_id()]
    assert this.refresh(force=True)  # the process that forgot them
    assert other.refresh()  # the others, at their next look
    assert user not in set(other.version.data.users.tolist()) and other.version.id == registry.current_id()
    assert not other.refresh() and not this.refresh()  # once


def test_a_version_keeps_what_each_listener_played(settings: Settings) -> None:
    registry = Registry(settings)
    data = two_tastes()
    played = data.matrix.tolil()
    played[0, 29] = 1.0  # a skip: played, no affinity
    data.played = played.tocsr()
    rec = Recommender({"popularity": build_generator("popularity")}).fit(data)
    version = registry.load(registry.publish(rec, data, {}))
    assert version.data.played[0, 29] == 1 and version.data.played.nnz == data.matrix.nnz + 1
