"""Daily Mix: one mix per taste cluster, named by genre, familiar and new tracks together."""

from __future__ import annotations

import numpy as np

from playnext.surfaces.daily_mix import daily_mixes


def test_mixes_follow_the_listeners_genres_and_mix_familiar_with_new(version) -> None:
    data = version.data
    mixes = daily_mixes(version, "u0", size=10)
    assert [m.meta["name"] for m in mixes] == ["Rock Mix"]  # u0 liked only rock
    items = [p.item_id for p in mixes[0].items]
    index = data.item_index(items)
    assert (data.meta.genre[index] == "rock").all() and len(set(items)) == len(items)
    liked = set(data.matrix[0].indices.tolist())
    familiar = [i in liked for i in index.tolist()]
    assert 0 < sum(familiar) < len(items)  # both familiar and new
    new = index[~np.array(familiar)]
    assert not set(new.tolist()) & set(data.played[0].indices.tolist())
    assert all(p.reason in ("new in your rock mix", "a rock favourite of yours") for p in mixes[0].items)


def test_a_listener_without_history_has_no_mixes_yet(version) -> None:
    assert daily_mixes(version, "stranger") == []


def test_a_favourite_reads_as_english_whatever_the_genre() -> None:
    from playnext.surfaces.daily_mix import _article

    assert [f"{_article(g)} {g}" for g in ("electronic", "Indie", "rock", "hip-hop")] == [
        "an electronic", "an Indie", "a rock", "a hip-hop"]  # fmt: skip


def test_a_mix_without_a_genre_is_named_after_its_artist_and_its_reasons_name_no_genre(version, monkeypatch) -> None:
    meta = version.data.meta
    monkeypatch.setattr(meta, "genre", np.full(len(meta.genre), "", dtype=object))
    (mix,) = daily_mixes(version, "u0", size=10)
    assert mix.meta["name"].endswith(" Mix") and mix.meta["genre"] == ""
    assert {p.reason for p in mix.items} == {"new in this mix", "a favourite of yours"}
