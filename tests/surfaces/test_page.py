"""Pages: the answer's items encoded once, sliced for a shorter answer, with the ids and types exposures log."""

from __future__ import annotations

import json

import msgspec

from playnext.surfaces.common import Pick, SurfaceList
from playnext.surfaces.page import AnswerItem, page_of

# Reasons that would break a page cut at the wrong byte: brackets, braces, commas and quotes inside strings.
PICKS = [
    Pick("t1", "track", 0.5, 'because you played "A, B"'),
    Pick("mix-7", "mix", 0.25, '}, {"position": 9}]'),
    Pick("t/ü", "track", -1.5, "[new], from an artist you follow"),
    Pick("e4", "episode", 0.0, "", serves=("u1", "u2")),
]


def _answered(items: list[Pick]) -> list[dict]:
    """The items as answers showed them before pages: one struct each, encoded together."""
    structs = [AnswerItem(n, p.item_id, p.item_type, p.score, p.reason, p.serves) for n, p in enumerate(items)]
    return json.loads(msgspec.json.encode(structs))


def test_a_page_holds_the_answer_items_and_what_its_exposure_logs() -> None:
    page = page_of(SurfaceList("discover-weekly", PICKS, False, "v1", {"week": "2026-W48"}))
    assert json.loads(page.items) == _answered(PICKS)
    assert json.loads(msgspec.json.encode({"items": page.answer_items()}))["items"] == _answered(PICKS)
    assert page.size == 4 and json.loads(page.ids) == ["t1", "mix-7", "t/ü", "e4"]
    assert json.loads(page.types) == ["track", "playlist", "track", "episode"]  # a mix card is logged as a playlist
    assert (page.surface, page.model_version, page.fallback, page.meta) == ("discover-weekly", "v1", False,
                                                                            {"week": "2026-W48"})  # fmt: skip


def test_the_first_n_items_of_a_page_are_the_page_of_the_first_n_picks() -> None:
    page = page_of(SurfaceList("daily-mix", PICKS, True, "v1", {"name": "Pop Mix"}))
    for n in range(len(PICKS) + 2):
        first, expected = page.first(n), page_of(SurfaceList("daily-mix", PICKS[:n], True, "v1", {"name": "Pop Mix"}))
        assert first == expected, n
        assert json.loads(first.items) == _answered(PICKS[:n]) and first.size == min(n, len(PICKS))
        assert json.loads(first.ids) == [p.item_id for p in PICKS[:n]]
    assert json.loads(page.ids) == [p.item_id for p in PICKS]  # the page itself is unchanged


def test_a_page_survives_the_store_encoding() -> None:
    page = page_of(SurfaceList("discover-weekly", PICKS, False, None))
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(page), type=type(page))
    assert decoded == page and decoded.first(3) == page.first(3)
