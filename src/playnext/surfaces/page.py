"""A page: a list as an answer shows it and its exposure logs it, encoded once by whoever made the list.

Discover Weekly and Daily Mix answer what the batch stored. Stored as picks, every answer decoded 30-180 of them
into structs, made an answer item of each in Python, encoded those back to JSON and listed the ids and types its
exposure logs: per item work on every request, for lists that change once a week or a day. The batch stores
pages instead (``surfaces.precomputed``): the answer's items already as JSON, where each item ends in it (so a
shorter page is a slice), and the ids and types the exposure logs. Serving then copies bytes. Every other
surface's list becomes a page the same way before it is answered (``page_of``), so there is one answer shape and
one exposure shape, whatever made the list.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from playnext.events.schema import ITEM_TYPES
from playnext.surfaces.common import SurfaceList


class AnswerItem(msgspec.Struct, omit_defaults=True, gc=False):
    """An item as answers show it."""

    position: int
    item_id: str
    item_type: str
    score: float
    reason: str
    serves: tuple[str, ...] = ()  # Blend only: omitted elsewhere


class Page(msgspec.Struct, array_like=True):
    """The answer's items, and the ids and types its exposure logs, each as a JSON array; ``cuts`` says where item
    ``i`` ends in each of the three (``_CUT``), so the first ``n`` items are three slices. Bytes, not lists: a Daily
    Mix of six 30-item mixes took 20 µs to decode with lists of strings, against 130-140 µs for its whole answer."""

    surface: str
    model_version: str | None
    fallback: bool  # the list came from popularity: the listener (or a dependency) had nothing better
    meta: dict[str, Any]
    items: bytes  # ``AnswerItem``s
    ids: bytes
    types: bytes  # as exposures log them (``logged_type``)
    cuts: bytes

    @property
    def size(self) -> int:
        return len(self.cuts) // _CUT.size

    def answer_items(self) -> msgspec.Raw:
        """The items for an answer's encoder to copy as they are."""
        return msgspec.Raw(self.items)

    def ends(self, n: int) -> tuple[int, int, int]:
        """Where the first ``n`` items end in ``items``, ``ids`` and ``types`` (the closing bracket not included)."""
        return _CUT.unpack_from(self.cuts, (n - 1) * _CUT.size) if n > 0 else (1, 1, 1)

    def first(self, n: int) -> Page:
        """The page's first ``n`` items: slices of its bytes, nothing decoded."""
        if n >= self.size:
            return self
        if n <= 0:
            return msgspec.structs.replace(self, items=b"[]", ids=b"[]", types=b"[]", cuts=b"")
        item, id_, type_ = self.ends(n)
        return msgspec.structs.replace(self, items=self.items[:item] + b"]", ids=self.ids[:id_] + b"]",
                                       types=self.types[:type_] + b"]", cuts=self.cuts[: n * _CUT.size])  # fmt: skip


_CUT = struct.Struct("<III")  # per item: the offset just past it in ``items``, ``ids`` and ``types``
_LOGGED = frozenset(ITEM_TYPES)
_encoder = msgspec.json.Encoder()


def logged_type(item_type: str) -> str:
    """Cards that are not catalog items (a Daily Mix card) are logged as playlists, the nearest event item type."""
    return item_type if item_type in _LOGGED else "playlist"


def page_of(shown: SurfaceList) -> Page:
    encode = _encoder.encode
    items = [encode(AnswerItem(position, p.item_id, p.item_type, p.score, p.reason, p.serves))
             for position, p in enumerate(shown.items)]  # fmt: skip
    ids = [encode(p.item_id) for p in shown.items]
    types = [encode(logged_type(p.item_type)) for p in shown.items]
    ends = [_ends(parts) for parts in (items, ids, types)]
    return Page(shown.surface, shown.model_version, shown.fallback, shown.meta, _array(items), _array(ids),
                _array(types), b"".join(_CUT.pack(*cut) for cut in zip(*ends, strict=True)))  # fmt: skip


def _array(parts: list[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"


def _ends(parts: list[bytes]) -> list[int]:
    """Where each part ends in ``_array(parts)``."""
    ends, at = [], 1  # past the opening bracket
    for part in parts:
        at += len(part)
        ends.append(at)
        at += 1  # the comma
    return ends
