"""A rendered answer, filled in, is byte for byte the answer and the exposures the routes build from its pages."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from playnext.events.exposures import parse_lines
from playnext.events.schema import encode_lines
from playnext.models.registry import ModelVersion
from playnext.surfaces.answer import listener_answer
from playnext.surfaces.common import SurfaceList
from playnext.surfaces.exposure import listener_impressions
from playnext.surfaces.page import Page, page_of
from playnext.surfaces.precomputed import RENDERED_SIZE, compute
from playnext.surfaces.rendered import render

DAY = dt.date(2026, 11, 25)
AT = dt.datetime(2026, 11, 25, 9, 30, 1, 250000, tzinfo=dt.UTC)


def built(surface: str, user: str, model_version: str, pages: list[Page], size: int, request_id: str,
          variant: str | None, source: str, exposure: str) -> tuple[bytes, bytes]:  # fmt: skip
    """What the routes answer and log from the pages themselves."""
    lists = [shown.first(size) for shown in pages]
    answer = msgspec.json.encode(listener_answer(surface, user, model_version, lists, request_id, variant, source))
    return answer, encode_lines(listener_impressions(lists, user, request_id, variant, AT, exposure))


@pytest.mark.parametrize("surface", ["discover-weekly", "daily-mix"])
@pytest.mark.parametrize("variant", [None, "dw-length:b", 'odd "label" \\ é'])
def test_a_filled_answer_is_the_built_answer_byte_for_byte(version: ModelVersion, surface: str,
                                                          variant: str | None) -> None:  # fmt: skip
    for user in ("u0", "u3", "u17"):
        pages = [page_of(shown) for shown in compute(version, surface, user, DAY)]
        size = RENDERED_SIZE[surface]
        rendered = render(surface, user, version.id, pages, size)
        assert rendered is not None and rendered.size == size
        for request_id, source in (("abc123", "precomputed"), ('client "id" \\ \u2028', "computed")):
            body, lines = rendered.fill(request_id, variant, source, "x00ff", AT)
            assert (body, lines) == built(surface, user, version.id, pages, size, request_id, variant, source,
                                          "x00ff")  # fmt: skip
            assert lines.count(b"\n") == rendered.count == (1 if any(p.size for p in pages) else 0)
            answer = msgspec.json.decode(body)
            assert answer["request_id"] == request_id and answer["variant"] == variant and answer["source"] == source


def mix(version: ModelVersion, n: int, number: int) -> Page:
    """A mix of ``n`` tracks (the small world's listeners have one or two)."""
    picks = compute(version, "daily-mix", "u0", DAY)[0].items
    meta = {"name": f"Mix {number}", "mix": number}
    return page_of(SurfaceList("daily-mix", (picks * 3)[:n], False, version.id, meta))


def test_daily_mix_exposures_are_one_line_that_unfolds_into_ids_and_positions_per_mix(version: ModelVersion) -> None:
    pages = [mix(version, 12, i + 1) for i in range(3)]
    rendered = render("daily-mix", "u0", version.id, pages, 5)
    assert rendered is not None and rendered.count == 1
    _, lines = rendered.fill("r1", None, "precomputed", "xab", AT)
    assert lines.count(b"\n") == 1
    rows = parse_lines(lines).to_pylist()
    assert len(rows) == 5 * len(pages) and len({r["event_id"] for r in rows}) == len(rows)
    assert {r["event_id"] for r in rows if r["position"] == 0} == {f"xab-0.{i}-0" for i in range(len(pages))}
    for i, page in enumerate(pages):
        shown = [(r["position"], r["item_id"]) for r in rows if r["event_id"].startswith(f"xab-0.{i}-")]
        assert shown == list(enumerate(msgspec.json.decode(page.ids)[:5]))


def test_lists_shorter_than_the_rendered_length_and_empty_ones(version: ModelVersion) -> None:
    pages = [mix(version, 3, 1), mix(version, 0, 2), mix(version, 30, 3)]
    rendered = render("daily-mix", "u0", version.id, pages, 20)
    assert rendered is not None and rendered.count == 1
    filled = rendered.fill("r", "e:v", "precomputed", "x1", AT)
    assert filled == built("daily-mix", "u0", version.id, pages, 20, "r", "e:v", "precomputed", "x1")
    assert [len(m["items"]) for m in msgspec.json.decode(filled[0])["mixes"]] == [3, 0, 20]


@pytest.mark.parametrize("planted", ["\x00pnR\x00", "\x00pnI0\x00", "\x00pnX\x01", "\x00pnQ9\x00", "\x00pnI7\x00",
                                     "0001-01-01T00:00:00.271828Z"])  # fmt: skip
def test_a_list_whose_text_holds_a_sentinel_is_not_rendered(version: ModelVersion, planted: str) -> None:
    shown = compute(version, "discover-weekly", "u0", DAY)[0]
    if planted.startswith("0001"):  # the time's sentinel is looked for in exposure lines, which name the listener
        assert render("discover-weekly", planted, version.id, [page_of(shown)], 30) is None
        return
    shown.meta = {**shown.meta, "note": planted}
    assert render("discover-weekly", "u0", version.id, [page_of(shown)], 30) is None


@pytest.mark.parametrize("text", ["100% yours", "%(R)s", "%s%%%", "%(X)s %b %d", "%"])
def test_text_holding_percent_signs_fills_to_the_same_bytes(version: ModelVersion, text: str) -> None:
    """The templates double the lists' own ``%``: a name or reason that reads like a slot stays text, in the
    answer and in the exposure lines, and values holding ``%`` go in as they are."""
    picks = compute(version, "daily-mix", "u0", DAY)[0].items
    named = SurfaceList("daily-mix", (picks * 3)[:4], False, version.id, {"name": text, "mix": 1, "note": text})
    pages = [page_of(named), mix(version, 2, 2)]
    rendered = render("daily-mix", f"u{text}", version.id, pages, 20)
    assert rendered is not None
    for request_id, variant in (("r%(R)s", "e:%s"), ("plain", None)):
        filled = rendered.fill(request_id, variant, "precomputed", "x1", AT)
        assert filled == built("daily-mix", f"u{text}", version.id, pages, 20, request_id, variant, "precomputed",
                               "x1")  # fmt: skip
        assert msgspec.json.decode(filled[0])["mixes"][0]["name"] == text
