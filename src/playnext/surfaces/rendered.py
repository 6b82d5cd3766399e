"""A precomputed answer rendered once, by the batch, and filled in per request.

Discover Weekly and Daily Mix answer what the batch stored, and most requests ask for the default length. Even from
pages (``surfaces.page``: the items already JSON), each answer still built a dictionary per list, an exposure
record per list, and encoded both: for Daily Mix's six mixes that was most of the route's own work, per request,
for an answer that differs between requests only in its request id, variant, source, time and exposure id. So the
batch stores, beside the pages, the answer and its exposure log lines for the default length as byte chunks with
slots for those five values and for each list's items, ids and types (slices of the pages it is stored with, so
nothing is stored twice). A request fills the slots and joins: two ``bytes.join`` calls and three slices per list.

The chunks are made by the very functions the routes answer with (``surfaces.answer``, ``surfaces.exposure``),
called with sentinel values and split where the sentinels landed, so a filled answer is byte for byte the answer
the routes would build. A list whose text happens to contain a sentinel is left unrendered (``render`` returns
None) and served from its pages.
"""

from __future__ import annotations

import datetime as dt
import re
from operator import itemgetter
from typing import Any

import msgspec

from playnext.events.schema import encode_lines
from playnext.surfaces.answer import listener_answer
from playnext.surfaces.exposure import listener_impressions
from playnext.surfaces.page import Page

_encode = msgspec.json.Encoder().encode

# Slots are numbered by where their value sits in ``Rendered.fill``'s values: five per answer, then three per list.
_FIXED = {"R": 0, "V": 1, "S": 2, "T": 3, "X": 4}  # request id, variant, source, time, exposure id
_PER_LIST = {"I": 0, "D": 1, "Y": 2}  # a list's items, ids and types, between their brackets
# A sentinel is a string no list holds: control characters, which JSON escapes as \u0000. "Whole" sentinels are
# replaced with their quotes (a value that may be null or need escaping); the exposure id's sits inside a string.
_SLOT = re.compile(rb'"\\u0000pn(\w+)\\u0000"|\\u0000pn(\w+)\\u0001')
_PLANTED_AT = dt.datetime(1, 1, 1, 0, 0, 0, 271828, tzinfo=dt.UTC)  # an exposure's time must be a datetime
_PLANTED_AT_JSON = _encode(_PLANTED_AT)


def _whole(code: str) -> str:
    return f"\x00pn{code}\x00"


def _quoted(code: str) -> bytes:
    return _encode(_whole(code))


class Rendered(msgspec.Struct, array_like=True, gc=False):
    size: int  # items per list the answer shows (the route's default)
    cuts: list[int]  # per list: where its items, ids and types end at ``size`` items
    answer: list[bytes]  # constant chunks, with an empty placeholder for a slot between each two
    answer_slots: list[int]
    lines: list[bytes]  # the exposures' NDJSON, the same way
    line_slots: list[int]
    count: int  # exposure lines

    def fill(self, lists: list[Page], request_id: str, variant: str | None, source: str, exposure: str,
             at: dt.datetime) -> tuple[bytes, bytes]:  # fmt: skip
        """The answer's body and its exposures' NDJSON. ``lists``: the pages this was rendered from."""
        values: list[Any] = [_encode(request_id), _encode(variant), _encode(source), _encode(at), exposure.encode()]
        cuts = iter(self.cuts)
        for shown, items, ids, types in zip(lists, cuts, cuts, cuts, strict=True):
            values += (memoryview(shown.items)[1:items], memoryview(shown.ids)[1:ids],
                       memoryview(shown.types)[1:types])  # fmt: skip
        return _join(self.answer, self.answer_slots, values), _join(self.lines, self.line_slots, values)


def _join(chunks: list[bytes], slots: list[int], values: list[Any]) -> bytes:
    if not slots:
        return b"".join(chunks)
    parts = chunks.copy()
    picked = itemgetter(*slots)(values)
    parts[1::2] = picked if len(slots) > 1 else (picked,)
    return b"".join(parts)


def render(surface: str, user: str, model_version: str | None, lists: list[Page], size: int) -> Rendered | None:
    """``lists`` answered at ``size`` items each, as chunks and slots; None if a list's text holds a sentinel."""
    planted, cuts = [], []
    for i, shown in enumerate(lists):
        n = min(size, shown.size)
        cuts += shown.ends(n)
        sentinels = [b"[" + _quoted(f"{kind}{i}") + b"]" if n else b"[]" for kind in _PER_LIST]
        planted.append(msgspec.structs.replace(shown.first(n), items=sentinels[0], ids=sentinels[1],
                                               types=sentinels[2]))  # fmt: skip
    answer = _encode(listener_answer(surface, user, model_version, planted, _whole("R"), _whole("V"), _whole("S")))
    exposures = listener_impressions(planted, user, _whole("R"), _whole("V"), _PLANTED_AT, "\x00pnX\x01")
    lines = encode_lines(exposures).replace(_PLANTED_AT_JSON, _quoted("T"))
    # Each planted sentinel lands once; a sentinel in the lists' own text would add a slot, filled wrongly later.
    shown = sum(1 for page in lists if page.size)  # lists with items: an empty one has no items, ids or types slots
    expected_answer = 3 * len(lists) + shown + (3 if surface == "daily-mix" else 0)
    try:
        answer_chunks, answer_slots = _split(answer, len(lists))
        line_chunks, line_slots = _split(lines, len(lists))
    except (KeyError, ValueError):
        return None
    if len(answer_slots) != expected_answer or len(line_slots) != 6 * shown:
        return None
    return Rendered(size, cuts, answer_chunks, answer_slots, line_chunks, line_slots, len(exposures))


def _split(text: bytes, lists: int) -> tuple[list[bytes], list[int]]:
    parts = _SLOT.split(text)  # chunk, whole code, inner code, chunk, ...
    chunks, slots = [], []
    for at in range(0, len(parts) - 1, 3):
        code = (parts[at + 1] or parts[at + 2]).decode()
        if code in _FIXED:
            slots.append(_FIXED[code])
        elif 0 <= (index := int(code[1:])) < lists:
            slots.append(len(_FIXED) + len(_PER_LIST) * index + _PER_LIST[code[0]])
        else:
            raise ValueError(code)
        chunks += (parts[at], b"")
    chunks.append(parts[-1])
    return chunks, slots
