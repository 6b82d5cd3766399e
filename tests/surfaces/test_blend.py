"""Blend: fair shares, who each track is for, a taste match that tells alike from unlike listeners."""

from __future__ import annotations

import pytest

from playnext.surfaces.blend import BlendError, blend, taste_match
from tests.surfaces.conftest import rock


def test_each_member_gets_a_fair_share_of_their_own_taste(version) -> None:
    got = blend(version, ["u0", "u30"], n=20)  # a rock and a jazz listener
    shares = got.meta["shares"]
    assert sum(shares.values()) == 20 and abs(shares["u0"] - shares["u30"]) <= 1
    for pick in got.items:
        assert pick.serves and pick.reason.startswith("for ")
        if pick.serves == ("u0",):
            assert rock(version, [pick.item_id])[0]
        if pick.serves == ("u30",):
            assert not rock(version, [pick.item_id])[0]
    assert len({p.item_id for p in got.items}) == 20


def test_three_members_within_one_track_of_equal(version) -> None:
    shares = blend(version, ["u0", "u1", "u30"], n=20).meta["shares"]
    assert max(shares.values()) - min(shares.values()) <= 1


def test_taste_match_is_high_for_alike_and_low_for_unlike_listeners(version) -> None:
    alike, unlike = taste_match(version, ["u0", "u1"]), taste_match(version, ["u0", "u30"])
    assert 0 <= unlike < alike <= 100 and alike > 80 and unlike < 20


def test_member_count_is_checked(version) -> None:
    with pytest.raises(BlendError, match="2 to 10"):
        blend(version, ["u0"])
    with pytest.raises(BlendError, match="2 to 10"):
        blend(version, ["u0", "u0"])
    with pytest.raises(BlendError):
        blend(version, [f"u{i}" for i in range(11)])
    assert blend(version, ["u0", "stranger"], n=6).items  # an unknown member gets popular tracks
