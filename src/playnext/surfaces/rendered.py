"""A precomputed answer rendered once, by the batch, and filled in per request.

Discover Weekly and Daily Mix answer what the batch stored, and most requests ask for the default length. Even from
pages (``surfaces.page``: the items already JSON), each answer still built a dictionary per list, an exposure
record per list, and encoded both: for Daily Mix's six mixes that was most of the route's own work, per request,
for an answer that differs between requests only in its request id, variant, source, time and exposure id. So the
batch stores, beside the pages, the answer and its exposure log lines for the default length as byte chunks with
slots for those five values. A request fills the slots and joins: two ``bytes.join`` calls.

The chunks hold the lists' items themselves. The first rendering (until pages were packed) held slots for
them too, filled with slices of the pages stored beside it so that nothing was stored twice; but every request
then decoded every page and made three slices per list: for Daily Mix 16 µs of the route's 70 µs, against 9 µs
now (``bench/precomputed.py``, README). Now a request for the default length decodes no page
(``precomputed.current_pages``). That length's items are stored twice, here and in the pages other lengths read,
which are packed so that values stay the size they were (``precomputed.pack_pages``). The first rendering's values
read as not rendered, so they are answered from their pages until the next batch rewrites them.

The chunks are made by the very functions the routes answer with (``surfaces.answer``, ``surfaces.exposure``),
called with sentinel values and split where the sentinels landed, so a filled answer is byte for byte the answer
the routes would build. A list whose text happens to contain a sentinel is left unrendered (``render`` returns
None) and served from its pages.
"""

from __future__ import annotations

import datetime as dt
import re
from operator import itemgetter

import msgspec

from playnext.events.schema import encode_lines
from playnext.surfaces.answer import listener_answer
from playnext.surfaces.exposure import listener_impressions
from playnext.surfaces.page import Page

_encode = msgspec.json.Encoder().encode

# Slots are numbered by where their value sits in ``Rendered.fill``'s values.
_FIXED = {"R": 0, "V": 1, "S": 2, "T": 3, "X": 4}  # request id, variant, source, time, exposure id
# A sentinel is a string no list holds: control characters, which JSON escapes as \u0000. "Whole" sentinels are
# replaced with their quotes (a value that may be null or need escaping); the exposure id's sits inside a string.
_SLOT = re.compile(rb'"\\u0000pn(\w+)\\u0000"|\\u0000pn(\w+)\\u0001')
_PLANTED_AT = dt.datetime(1, 1, 1, 0, 0, 0, 271828, tzinfo=dt.UTC)  # an exposure's time must be a datetime
_PLANTED_AT_JSON = _encode(_PLANTED_AT)


def _whole(code: str) -> str:
    return f"\x00pn{code}\x00"


def _quoted(code: str) -> bytes:
    return _encode(_whole(code))


class Rendered(msgspec.Struct, array_like=True, gc=False, tag="whole"):
    """Tagged, so that a rendering of the first shape (whose slots took slices of the pages) does not decode as
    this one and get filled wrongly."""

    size: int  # items per list the answer shows (the route's default)
    answer: list[bytes]  # constant chunks, with an empty placeholder for a slot between each two
    answer_slots: list[int]
    lines: list[bytes]  # the exposures' NDJSON, the same way
    line_slots: list[int]
    count: int  # exposure lines

    def fill(self, request_id: str, variant: str | None, source: str, exposure: str,
             at: dt.datetime) -> tuple[bytes, bytes]:  # fmt: skip
        """The answer's body and its exposures' NDJSON."""
        values = (_encode(request_id), _encode(variant), _encode(source), _encode(at), exposure.encode())
        return _join(self.answer, self.answer_slots, values), _join(self.lines, self.line_slots, values)


def _join(chunks: list[bytes], slots: list[int], values: tuple[bytes, ...]) -> bytes:
    if not slots:
        return b"".join(chunks)
    parts = chunks.copy()
    picked = itemgetter(*slots)(values)
    parts[1::2] = picked if len(slots) > 1 else (picked,)
    return b"".join(parts)


def render(surface: str, user: str, model_version: str | None, lists: list[Page], size: int) -> Rendered | None:
    """``lists`` answered at ``size`` items each, as chunks and slots; None if there are no lists (the routes
    answer something else then) or a list's text holds a sentinel."""
    if not lists:
        return None
    shown = [page.first(size) for page in lists]
    answer = _encode(listener_answer(surface, user, model_version, shown, _whole("R"), _whole("V"), _whole("S")))
    exposures = listener_impressions(shown, user, _whole("R"), _whole("V"), _PLANTED_AT, "\x00pnX\x01")
    lines = encode_lines(exposures).replace(_PLANTED_AT_JSON, _quoted("T"))
    # Each planted sentinel lands once per place it was planted; one in the lists' own text would add a slot,
    # filled wrongly later. Per list, the answer has a request id, variant and source (Daily Mix once more for the
    # whole answer) and each exposure line (one per list with items) those and a time, but no source.
    expected_answer = 3 * len(lists) + (3 if surface == "daily-mix" else 0)
    try:
        answer_chunks, answer_slots = _split(answer)
        line_chunks, line_slots = _split(lines)
    except KeyError:
        return None
    if len(answer_slots) != expected_answer or len(line_slots) != 4 * len(exposures):
        return None
    return Rendered(size, answer_chunks, answer_slots, line_chunks, line_slots, len(exposures))


def _split(text: bytes) -> tuple[list[bytes], list[int]]:
    parts = _SLOT.split(text)  # chunk, whole code, inner code, chunk, ...
    chunks, slots = [], []
    for at in range(0, len(parts) - 1, 3):
        slots.append(_FIXED[(parts[at + 1] or parts[at + 2]).decode()])  # KeyError: a code no one planted
        chunks += (parts[at], b"")
    chunks.append(parts[-1])
    return chunks, slots
