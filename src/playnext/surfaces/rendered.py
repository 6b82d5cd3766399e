"""A precomputed answer rendered once, by the batch, and filled in per request.

Discover Weekly and Daily Mix answer what the batch stored, and most requests ask for the default length. Even from
pages (``surfaces.page``: the items already JSON), each answer still built a dictionary per list, an exposure
record per list, and encoded both: for Daily Mix's six mixes that was most of the route's own work, per request,
for an answer that differs between requests only in its request id, variant, source, time and exposure id. So the
batch stores, beside the pages, the answer and its exposure log lines for the default length as two ``%``
templates with named slots for those five values. A request fills them: two ``bytes % dict`` calls, each one pass
in C that finds the slots with ``memchr``.

The second rendering (until 2026-11-27's last session) stored byte chunks and slot numbers instead, and a request
joined the chunks: decoding a Daily Mix value made 92 byte strings, and filling it copied and sliced their list.
Measured in a loop over 200 listeners of the 100k world (best of five), decoding went from 1.64 to 0.38 µs and
filling from 1.85 to 1.55 µs. Values of that shape read as not rendered, like the first's.

The templates hold the lists' items themselves. The first rendering (until pages were packed) held slots for
them too, filled with slices of the pages stored beside it so that nothing was stored twice; but every request
then decoded every page and made three slices per list: for Daily Mix 16 µs of the route's 70 µs, against 9 µs
now (``bench/precomputed.py``, README). Now a request for the default length decodes no page
(``precomputed.current_pages``). That length's items are stored twice, here and in the pages other lengths read,
which are packed so that values stay the size they were (``precomputed.pack_pages``). The earlier renderings'
values read as not rendered, so they are answered from their pages until the next batch rewrites them.

The templates are made by the very functions the routes answer with (``surfaces.answer``,
``surfaces.exposure``), called with sentinel values, which become the slots (the text's own ``%`` doubled), so a
filled answer is byte for byte the answer the routes would build. A list whose text happens to contain a sentinel
is left unrendered (``render`` returns None) and served from its pages.
"""

from __future__ import annotations

import datetime as dt
import re

import msgspec

from playnext.events.schema import encode_lines
from playnext.surfaces.answer import listener_answer
from playnext.surfaces.exposure import listener_impressions
from playnext.surfaces.page import Page

_encode = msgspec.json.Encoder().encode

# The slots' names, as ``Rendered.fill`` names its values.
_FIXED = {"R", "V", "S", "T", "X"}  # request id, variant, source, time, exposure id
# A sentinel is a string no list holds: control characters, which JSON escapes as \u0000. "Whole" sentinels are
# replaced with their quotes (a value that may be null or need escaping); the exposure id's sits inside a string.
_SLOT = re.compile(rb'"\\u0000pn(\w+)\\u0000"|\\u0000pn(\w+)\\u0001')
_PLANTED_AT = dt.datetime(1, 1, 1, 0, 0, 0, 271828, tzinfo=dt.UTC)  # an exposure's time must be a datetime
_PLANTED_AT_JSON = _encode(_PLANTED_AT)


def _whole(code: str) -> str:
    return f"\x00pn{code}\x00"


def _quoted(code: str) -> bytes:
    return _encode(_whole(code))


class Rendered(msgspec.Struct, array_like=True, gc=False, tag="template"):
    """Tagged, so that a rendering of an earlier shape (the module's docstring) does not decode as this one and get
    filled wrongly: those values are answered from their pages until the next batch rewrites them."""

    size: int  # items per list the answer shows (the route's default)
    answer: bytes  # a ``%`` template: its text with ``%`` doubled, and a ``%(R)s`` for each slot (``_FIXED``)
    lines: bytes  # the exposures' NDJSON, the same way
    count: int  # exposure lines

    def fill(self, request_id: str, variant: str | None, source: str, exposure: str,
             at: dt.datetime) -> tuple[bytes, bytes]:  # fmt: skip
        """The answer's body and its exposures' NDJSON."""
        values = {b"R": _encode(request_id), b"V": _encode(variant), b"S": _encode(source), b"T": _encode(at),
                  b"X": exposure.encode()}  # fmt: skip
        return self.answer % values, self.lines % values


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
    # whole answer) and its exposure line (one for all its lists, none if none has items) those and a time, but no
    # source.
    expected_answer = 3 * len(lists) + (3 if surface == "daily-mix" else 0)
    answer_template, lines_template = _template(answer, expected_answer), _template(lines, 4 * len(exposures))
    if answer_template is None or lines_template is None:
        return None
    return Rendered(size, answer_template, lines_template, len(exposures))


def _template(text: bytes, slots: int) -> bytes | None:
    """``text`` as a ``%`` template (its own ``%`` doubled, each planted sentinel a named slot); None unless it
    holds exactly ``slots`` sentinels, all of codes that were planted."""
    parts = _SLOT.split(text)  # text, whole code, inner code, text, ...
    codes = [(whole or inner).decode() for whole, inner in zip(parts[1::3], parts[2::3], strict=True)]
    if len(codes) != slots or not _FIXED.issuperset(codes):
        return None
    out = [parts[0].replace(b"%", b"%%")]
    for code, between in zip(codes, parts[3::3], strict=True):
        out += (b"%(" + code.encode() + b")s", between.replace(b"%", b"%%"))
    return b"".join(out)
