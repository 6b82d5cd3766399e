"""Batch surfaces: what ``precompute`` stores is what serving would compute, and stale values are misses."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import msgspec
import pytest

from playnext.experiments.treatment import CONTROL, Treatment
from playnext.models.registry import ModelVersion
from playnext.online.local import LocalStore
from playnext.privacy.tombstones import Tombstones, placeholder_id
from playnext.surfaces import precomputed
from playnext.surfaces.common import SurfaceList
from playnext.surfaces.daily_mix import MAX_SIZE
from playnext.surfaces.page import Page, page_of
from playnext.surfaces.precomputed import PAGED, SURFACES, compute, current, current_pages, precompute

DAY = dt.date(2026, 11, 25)  # a Wednesday of ISO week 48


def lookup(store: LocalStore, version: ModelVersion, surface: str, user_id: str, day: dt.date,
           treatment: Treatment = CONTROL) -> list[SurfaceList] | list[Page]:  # fmt: skip
    """What serving reads: the stored value, when current (a paged one's pages)."""
    if surface in PAGED:
        return current_pages(store.get_list(surface, user_id), version, surface, day, treatment).pages
    return current(store.get_list(surface, user_id), version, surface, day, treatment)


def as_stored(version: ModelVersion, surface: str, user_id: str, day: dt.date) -> list[SurfaceList] | list[Page]:
    """What serving would compute for the listener, in the form the surface's value holds."""
    lists = compute(version, surface, user_id, day)
    return [page_of(shown) for shown in lists] if surface in PAGED else lists


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "online.sqlite3")
    yield s
    s.close()


def test_every_listener_gets_every_surface_and_it_equals_the_on_demand_answer(
    version: ModelVersion, store: LocalStore
) -> None:
    seen: list[int] = []
    written = precompute(version, store, list(SURFACES), DAY, on_progress=seen.append)
    n = len(version.data.users)
    assert written == dict.fromkeys(SURFACES, n) and seen[-1] == n
    for user in version.data.users.astype(str).tolist()[:10]:
        for surface in SURFACES:
            stored = lookup(store, version, surface, user, DAY)
            assert stored == as_stored(version, surface, user, DAY), (surface, user)
            if surface in PAGED:  # the batch renders the default answer of each (``surfaces.rendered``)
                rendered = current_pages(store.get_list(surface, user), version, surface, DAY).rendered
                assert rendered is not None and rendered.size == precomputed.RENDERED_SIZE[surface]
    dw = lookup(store, version, "discover-weekly", "u0", DAY)[0]
    assert dw.size == 30 and dw.meta["week"] == "2026-W48"
    assert {s.surface for s in lookup(store, version, "home", "u0", DAY)} >= {"home/made-for-you", "home/popular"}


def test_a_value_is_stale_for_another_week_or_model_version(version: ModelVersion, store: LocalStore) -> None:
    precompute(version, store, ["discover-weekly", "daily-mix"], DAY, users=[0])
    user = str(version.data.users[0])
    assert lookup(store, version, "discover-weekly", user, DAY + dt.timedelta(days=4))  # Sunday: same week
    with pytest.raises(LookupError):
        lookup(store, version, "discover-weekly", user, DAY + dt.timedelta(days=5))  # Monday: a new week
    assert lookup(store, version, "daily-mix", user, DAY + dt.timedelta(days=5)) is not None  # not weekly
    other = dataclasses.replace(version, id="another-version")
    with pytest.raises(LookupError):
        lookup(store, other, "daily-mix", user, DAY)
    with pytest.raises(LookupError):
        lookup(store, version, "daily-mix", str(version.data.users[1]), DAY)  # not precomputed


def test_an_unreadable_value_is_a_miss_not_an_error(version: ModelVersion, store: LocalStore) -> None:
    store.put_lists("home", [("u0", b"\xc1 garbage from an older playnext")])
    with pytest.raises(LookupError):
        lookup(store, version, "home", "u0", DAY)


def test_a_value_an_older_playnext_stored_as_picks_reads_as_their_pages(version: ModelVersion,
                                                                       store: LocalStore) -> None:  # fmt: skip
    """Discover Weekly and Daily Mix were stored as picks before they were stored as pages. Such a value is still
    answered from the store (as the pages the batch would store now), and checked like any other: stale for
    another week, model version or experiment parameters."""
    for surface in PAGED:
        for user in version.data.users.astype(str).tolist()[:5]:
            lists = compute(version, surface, user, DAY)
            key = CONTROL.key(surface)
            older = msgspec.msgpack.encode(precomputed.Stored(version.id, precomputed.valid_for(surface, DAY),
                                                              lists, key))  # fmt: skip
            store.put_lists(surface, [(user, older)])
            assert lookup(store, version, surface, user, DAY) == as_stored(version, surface, user, DAY)
            assert lookup(store, version, surface, user, DAY) == [page_of(shown) for shown in lists]
            with pytest.raises(LookupError):
                lookup(store, dataclasses.replace(version, id="another-version"), surface, user, DAY)
            with pytest.raises(LookupError):
                lookup(store, version, surface, user, DAY, Treatment("e:b", {surface: {"explore": 0.5}}))
    user = str(version.data.users[0])
    stale = msgspec.msgpack.encode(precomputed.Stored(version.id, "2026-W47", compute(version, "discover-weekly",
                                                                                     user, DAY), ""))  # fmt: skip
    store.put_lists("discover-weekly", [(user, stale)])
    with pytest.raises(LookupError):
        lookup(store, version, "discover-weekly", user, DAY)


def test_the_rendered_length_reads_the_rendered_answer_alone_and_other_lengths_the_pages(
    version: ModelVersion,
) -> None:
    """A request for the rendered length is answered without decoding the pages, so a value whose pages are
    damaged still answers it; any other length reads the pages, and such a value is then a miss (recomputed)."""
    for surface in PAGED:
        lists = compute(version, surface, "u0", DAY)
        value = precomputed.encode(version, surface, DAY, lists, user_id="u0")
        size = precomputed.RENDERED_SIZE[surface]
        default = current_pages(value, version, surface, DAY, size=size)
        assert default.pages is None and default.rendered is not None and default.rendered.size == size
        other = current_pages(value, version, surface, DAY, size=size - 1)
        assert other.pages == [page_of(shown) for shown in lists] and other.rendered == default.rendered
        assert current_pages(value, version, surface, DAY).pages == other.pages  # no length: the pages
        stored = msgspec.msgpack.decode(value, type=precomputed.StoredPages)
        for pages in (b"\xc1 not pages", b"", stored.pages[:-9], stored.pages[:4] + bytes(len(stored.pages) - 4)):
            damaged = msgspec.msgpack.encode(msgspec.structs.replace(stored, pages=pages))
            assert current_pages(damaged, version, surface, DAY, size=size) == default
            with pytest.raises(LookupError):
                current_pages(damaged, version, surface, DAY, size=size - 1)


def test_a_value_of_the_first_rendered_layout_is_answered_from_its_pages(version: ModelVersion) -> None:
    """Values stored before pages were packed hold their pages as a list, and a rendering whose slots took slices
    of those pages (``surfaces.rendered``). Their pages still read. Their rendering does not read as today's, which
    would fill it wrongly, so even the rendered length is answered from the pages (the same answer) until the next
    batch rewrites them."""
    for surface in PAGED:
        pages = [page_of(shown) for shown in compute(version, surface, "u0", DAY)]
        # size, cuts, answer chunks and slots, line chunks and slots, count: per-list slots numbered from 5
        first = [20, [1, 1, 1], [b'{"items":[', b"", b"]}"], [5], [b'{"ids":[', b"", b"]}\n"], [6], 1]
        value = msgspec.msgpack.encode([version.id, precomputed.valid_for(surface, DAY), CONTROL.key(surface), pages,
                                        first])  # fmt: skip
        read = current_pages(value, version, surface, DAY, size=precomputed.RENDERED_SIZE[surface])
        assert read.pages == pages and read.rendered is None


def test_a_value_of_the_chunk_layout_is_answered_from_its_pages(version: ModelVersion) -> None:
    """Values rendered before 2026-11-27's last session hold their rendering as byte chunks and slot numbers
    (tag ``whole``), not as ``%`` templates: filled as templates, their chunks would lose the slots. They read as
    not rendered, and the rendered length is answered from their packed pages until the next batch."""
    for surface in PAGED:
        pages = [page_of(shown) for shown in compute(version, surface, "u0", DAY)]
        # tag, size, answer chunks and slots, line chunks and slots, count
        whole = ["whole", 20, [b'{"request_id":', b"", b"}"], [0], [b'{"id":', b"", b"}\n"], [0], 1]
        value = msgspec.msgpack.encode([version.id, precomputed.valid_for(surface, DAY), CONTROL.key(surface),
                                        precomputed.pack_pages(pages), whole])  # fmt: skip
        read = current_pages(value, version, surface, DAY, size=precomputed.RENDERED_SIZE[surface])
        assert read.pages == pages and read.rendered is None


def test_a_page_value_is_a_miss_for_home(version: ModelVersion, store: LocalStore) -> None:
    """Home reads picks only: a page value (never stored under Home, but a store is shared data) is a miss, not
    shelves misread."""
    user = str(version.data.users[0])
    lists = compute(version, "discover-weekly", user, DAY)
    store.put_lists("home", [(user, precomputed.encode(version, "discover-weekly", DAY, lists))])
    with pytest.raises(LookupError):
        lookup(store, version, "home", user, DAY)


def test_a_listener_forgotten_after_the_version_was_made_is_left_out(
    version: ModelVersion, store: LocalStore, tmp_path: Path
) -> None:
    """A batch job holds the version it loaded at its start; a listener forgotten meanwhile is not written back."""
    stones = Tombstones(tmp_path / "tombstones.json")
    first, second = (str(u) for u in version.data.users[:2])
    stones.add(first, at=version.created_at + 1)
    stones.add(second, at=version.created_at - 1)  # before the version: what it holds of them is new (came back)
    written = precompute(version, store, ["discover-weekly"], DAY, users=[0, 1, 2], tombstones=stones)
    assert written == {"discover-weekly": 2}
    assert store.get_list("discover-weekly", first) is None
    assert store.get_list("discover-weekly", second) is not None


def test_a_scrubbed_listener_row_gets_no_lists(version: ModelVersion, store: LocalStore) -> None:
    """A forget turns the listener's row of every model version into an anonymous placeholder, which is nobody's:
    the batch stores nothing under it."""
    users = version.data.users.astype(object)
    users[1] = placeholder_id()
    scrubbed = dataclasses.replace(version, data=dataclasses.replace(version.data, users=users, _user_index=None))
    assert precompute(scrubbed, store, ["discover-weekly"], DAY, users=[0, 1, 2]) == {"discover-weekly": 2}
    assert store.list_users("discover-weekly") == sorted([users[0], users[2]])
    assert precompute(scrubbed, store, ["home"], DAY) == {"home": len(users) - 1}


def test_unknown_surfaces_are_refused_before_any_work(version: ModelVersion, store: LocalStore) -> None:
    with pytest.raises(ValueError, match="unknown batch surface 'weekly'"):
        precompute(version, store, ["weekly"], DAY)
    assert store.list_users("weekly") == []


def test_values_are_compact(version: ModelVersion) -> None:
    """A value's pages are packed (only a request for another length than the rendered one reads them): a value
    without a rendered answer takes under half its pages' bytes, and one with it not much more than those."""
    for surface in PAGED:
        lists = compute(version, surface, "u0", DAY)
        raw = sum(len(page.items) + len(page.ids) + len(page.types) + len(page.cuts) for page in map(page_of, lists))
        bare, rendered = (precomputed.encode(version, surface, DAY, lists, user_id=user) for user in (None, "u0"))
        assert len(bare) < raw / 2
        assert len(rendered) < raw * 1.4  # here 1.06 (Daily Mix) and 1.3 times


def test_a_listener_without_a_taste_cluster_gets_a_stored_popular_mix(version: ModelVersion, store: LocalStore) -> None:
    """So that serving reads it like any mix instead of computing it on every request."""
    no_cluster = Treatment(label="x:y", params={"daily-mix": {"min_tracks": 10**6}})
    user = str(version.data.users[0])
    precompute(version, store, ["daily-mix"], DAY, users=[0], treatments=_Fixed(no_cluster))
    (mix,) = lookup(store, version, "daily-mix", user, DAY, no_cluster)
    assert mix.fallback and mix.meta["name"] == "Popular Mix" and mix.size == MAX_SIZE
    assert [m.meta["name"] for m in compute(version, "daily-mix", user, DAY)] != ["Popular Mix"]  # has clusters


class _Fixed:
    def __init__(self, treatment: Treatment) -> None:
        self.treatment = treatment

    def of(self, user_id: str) -> Treatment:
        return self.treatment
