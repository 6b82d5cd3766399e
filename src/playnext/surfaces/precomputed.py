"""Precomputed surfaces: what ``playnext batch`` writes to the online store, and what serving reads back.

Discover Weekly, Daily Mix and Home's shelves need the full candidate → ranker pass, too slow for a request at
catalog scale; ``precompute`` runs it for blocks of listeners at once (one ranker call per block) and stores each
listener's lists as one MessagePack value. A value names the model version and what it is valid for (Discover
Weekly: the ISO week), so serving knows a stale value when it sees one and computes afresh instead — the same
code on the same inputs, hence the very list a batch would have stored.

Discover Weekly and Daily Mix are answered as stored, so their values hold pages (``surfaces.page``: the answer's
items already encoded) and, for the length most requests ask for, the answer and its exposures rendered
(``surfaces.rendered``); Home composes each answer from its stored shelves, so its value holds the picks. A request
for the rendered length decodes the rendered answer alone: the pages are stored as one compressed blob, which the
decoder steps over without reading, and unpacked only for another length.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import struct
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import msgspec
import numpy as np
import pyarrow as pa

from playnext.experiments.treatment import CONTROL, Treatment, Treatments
from playnext.models.registry import ModelVersion
from playnext.online.store import Found, ListWriter, OnlineStore, PutLists, SkipListeners
from playnext.privacy.tombstones import Tombstones, placeholders
from playnext.surfaces import daily_mix, discover_weekly, home
from playnext.surfaces.common import SurfaceList
from playnext.surfaces.page import Page, page_of
from playnext.surfaces.rendered import Rendered, render

SURFACES = ("discover-weekly", "daily-mix", "home")
PAGED = frozenset({"discover-weekly", "daily-mix"})  # stored as pages: ``current_pages`` reads them
BLOCK = 512  # listeners per ranker call: bounds memory (a dense score row per listener) and shows progress
HOME_SIZE = 10  # Home is precomputed for pages of up to this many cards per shelf; larger pages compute live
# The length most requests ask for (the route's default), rendered as a whole answer by the batch.
RENDERED_SIZE = {"discover-weekly": discover_weekly.LENGTH, "daily-mix": daily_mix.SIZE}


class Stored(msgspec.Struct, array_like=True):
    """Home's value: its shelves as picks (and Discover Weekly's and Daily Mix's as an older playnext stored them,
    which ``current_pages`` still reads)."""

    model_version: str
    valid_for: str
    lists: list[SurfaceList]
    params: str = ""  # the experiment parameters the lists were computed with ("" = the defaults)


class StoredPages(msgspec.Struct, array_like=True):
    """A ``PAGED`` surface's value, as the batch writes it. Its third field is a string where ``Stored`` has lists,
    so neither decoder misreads a value of the other kind (``current_pages`` reads one an older playnext stored as
    picks on purpose)."""

    model_version: str
    valid_for: str
    params: str
    pages: bytes  # ``list[Page]``, packed (``pack_pages``); values stored before it was packed hold the list
    rendered: Rendered | None = None  # absent from values stored before 2026-11-27, and for unnamed listeners


_NIL = msgspec.Raw(b"\xc0")  # MessagePack's nil


class _StoredPagesRead(msgspec.Struct, array_like=True, gc=False):
    """``StoredPages`` as serving reads it: the pages left packed until a request for another length needs them."""

    model_version: str
    valid_for: str
    params: str
    pages: msgspec.Raw
    rendered: Rendered | None = None


class _StoredPagesUnrendered(msgspec.Struct, array_like=True, gc=False):
    """A value whose rendering does not read as a ``Rendered`` (one of the first shape, with slots for the lists'
    items, or of the second, byte chunks and slot numbers): answered from its pages, the same answer."""

    model_version: str
    valid_for: str
    params: str
    pages: msgspec.Raw
    rendered: msgspec.Raw = _NIL


class Paged(NamedTuple):
    """What a ``PAGED`` surface answers from: its pages, and their rendered answer when there is one. ``pages`` is
    None when the rendered answer is the one to give (``current_pages``' ``size``): they were not decoded."""

    pages: list[Page] | None
    rendered: Rendered | None = None


_Value = TypeVar("_Value", Stored, _StoredPagesRead, _StoredPagesUnrendered)
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Stored)
_read_decoder = msgspec.msgpack.Decoder(_StoredPagesRead)
_unrendered_decoder = msgspec.msgpack.Decoder(_StoredPagesUnrendered)
_page_list_decoder = msgspec.msgpack.Decoder(list[Page])
_blob_decoder = msgspec.msgpack.Decoder(bytes)


def valid_for(surface: str, day: dt.date) -> str:
    return discover_weekly.iso_week(day) if surface == "discover-weekly" else ""


def encode(version: ModelVersion, surface: str, day: dt.date, lists: list[SurfaceList],
           treatment: Treatment = CONTROL, user_id: str | None = None) -> bytes:  # fmt: skip
    """``user_id``: whose lists they are, which a ``PAGED`` surface's rendered answer names (without it, none)."""
    if surface in PAGED:
        pages = [page_of(shown) for shown in lists]
        rendered = None if user_id is None else render(surface, user_id, version.id, pages, RENDERED_SIZE[surface])
        return _encoder.encode(StoredPages(version.id, valid_for(surface, day), treatment.key(surface),
                                           pack_pages(pages), rendered))  # fmt: skip
    return _encoder.encode(Stored(version.id, valid_for(surface, day), lists, treatment.key(surface)))


def current(blob: Found, version: ModelVersion, surface: str, day: dt.date,
            treatment: Treatment = CONTROL) -> list[SurfaceList]:  # fmt: skip
    """The lists a stored value holds when they are current (this version, this week, the listener's experiment
    parameters). An empty list is a valid answer, so a missing, stale or unreadable value raises ``LookupError``."""
    try:
        return _checked(_decoder.decode(_present(blob, surface)), version, surface, day, treatment).lists
    except msgspec.DecodeError:
        raise LookupError(surface) from None  # not a value of this kind: recompute, the batch will overwrite


def current_pages(blob: Found, version: ModelVersion, surface: str, day: dt.date,
                  treatment: Treatment = CONTROL, size: int | None = None) -> Paged:  # fmt: skip
    """``current`` for a ``PAGED`` surface's value: its rendered answer when it is for ``size`` items a list (the
    pages are then not decoded), else its pages.

    A value stored as picks (by a playnext from before pages, 2026-11-26) reads as the pages of its picks, which
    are the pages the batch would store for them. So after an upgrade every listener is still answered from the
    store until the next batch rewrites the values, and during a rolling upgrade over a shared online store the
    upgraded servers answer from what the older ones wrote instead of recomputing it and overwriting it. Likewise
    a value whose rendering is of the first shape (``surfaces.rendered``) is answered from its pages."""
    present = _present(blob, surface)
    try:
        try:
            stored = _checked(_read_decoder.decode(present), version, surface, day, treatment)
        except msgspec.ValidationError:  # a rendering of the first shape, or damaged: the pages answer the same
            unrendered = _checked(_unrendered_decoder.decode(present), version, surface, day, treatment)
            return Paged(unpack_pages(unrendered.pages))
        if stored.rendered is not None and stored.rendered.size == size:
            return Paged(None, stored.rendered)
        return Paged(unpack_pages(stored.pages), stored.rendered)
    except msgspec.DecodeError:
        pass
    try:
        older = _checked(_decoder.decode(present), version, surface, day, treatment)
    except msgspec.DecodeError:
        raise LookupError(surface) from None
    return Paged([page_of(shown) for shown in older.lists])


def pack_pages(pages: list[Page]) -> bytes:
    """The pages as a value stores them: their encoding's length, then the encoding compressed with LZ4. Only a
    request for another length than the rendered one reads them, so they are kept small at that request's
    expense: on the 100k world a Daily Mix's 15.3 KB of pages take 3.9 KB, and 7 µs more to read than unpacked
    (``bench/precomputed.py``, README). Unpacked, a value holds its rendered length's items twice: a Daily Mix
    value was 28.9 KB against 17.6 KB packed."""
    encoded = _encoder.encode(pages)
    return _PACKED_SIZE.pack(len(encoded)) + _LZ4.compress(encoded, asbytes=True)


def unpack_pages(stored: msgspec.Raw) -> list[Page]:
    """A value's pages: packed (``pack_pages``), or (in a value stored before pages were packed) the list itself. Raises
    ``msgspec.DecodeError`` for pages that do not unpack or decode."""
    if memoryview(stored)[0] not in _BIN:
        return _page_list_decoder.decode(stored)
    packed = _blob_decoder.decode(stored)
    if len(packed) < _PACKED_SIZE.size:
        raise msgspec.DecodeError("packed pages without their length")
    (size,) = _PACKED_SIZE.unpack_from(packed)
    if size > _LZ4_MAX_RATIO * len(packed):  # damaged: no LZ4 block expands that much, so do not allocate it
        raise msgspec.DecodeError(f"packed pages claim {size} bytes from {len(packed)}")
    try:
        encoded = _LZ4.decompress(memoryview(packed)[_PACKED_SIZE.size :], decompressed_size=size, asbytes=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise msgspec.DecodeError(f"packed pages do not unpack: {exc}") from None
    return _page_list_decoder.decode(encoded)


_BIN = frozenset({0xC4, 0xC5, 0xC6})  # MessagePack's bin 8, 16 and 32
_PACKED_SIZE = struct.Struct("<I")
_LZ4 = pa.Codec("lz4")
_LZ4_MAX_RATIO = 256  # LZ4 expands a block at most about 255 times


def _present(blob: Found, surface: str) -> bytes | memoryview:
    if blob is None:
        raise LookupError(surface)
    return blob


def _checked(stored: _Value, version: ModelVersion, surface: str, day: dt.date, treatment: Treatment) -> _Value:
    if (stored.model_version != version.id or stored.valid_for != valid_for(surface, day)
            or stored.params != treatment.key(surface)):  # fmt: skip
        raise LookupError(surface)
    return stored


def forgotten_since_made(tombstones: Tombstones, version: ModelVersion) -> SkipListeners:
    """``put_lists``'s ``skip`` for lists made from ``version``: the listeners who asked to be forgotten since it
    was made, whose data it still holds wherever it was loaded before the forget scrubbed it."""
    return lambda users: tombstones.forgotten_since(users, version.created_at)


def compute(version: ModelVersion, surface: str, user_id: str, day: dt.date,
            candidates: np.ndarray | None = None, treatment: Treatment = CONTROL) -> list[SurfaceList]:  # fmt: skip
    """One listener's lists for ``surface``, as stored: the one definition batch and on-demand paths share."""
    params = treatment.of(surface)
    data = version.data
    row = data.user_row(user_id)
    country = (str(data.user_country[row]) or None) if row >= 0 else None
    if surface == "discover-weekly":
        return [discover_weekly.discover_weekly(version, user_id, day, country=country, candidates=candidates,
                                                **params)]  # fmt: skip
    if surface == "daily-mix":
        return daily_mix.daily_mixes(version, user_id, size=daily_mix.MAX_SIZE, candidates=candidates, **params) or [
            daily_mix.popular_mix(version, user_id, day, country=country)
        ]
    if surface == "home":
        found = home.shelves(version, user_id, size=HOME_SIZE, country=country, candidates=candidates)
        return [home.shelf_as_list(shelf, version.id) for shelf in found.values()]
    raise ValueError(f"unknown batch surface {surface!r}; known: {', '.join(SURFACES)}")


def precompute(
    version: ModelVersion, store: OnlineStore, surfaces: list[str], day: dt.date, *,
    users: np.ndarray | None = None, on_progress: Callable[[int], None] | None = None,
    treatments: Treatments | None = None, tombstones: Tombstones | None = None,
) -> dict[str, int]:  # fmt: skip
    """Compute and store ``surfaces`` for ``users`` (row numbers; default every listener the version knows),
    each with their experiment parameters (``treatments``). Returns how many lists were written per surface.
    A listener forgotten while the batch runs (``tombstones``) is left out from then on: the version in hand
    was loaded before the forget scrubbed it."""
    treatment_of = treatments.of if treatments is not None else (lambda user_id: CONTROL)
    for surface in surfaces:
        if surface not in SURFACES:
            raise ValueError(f"unknown batch surface {surface!r}; known: {', '.join(SURFACES)}")
    rows = np.arange(len(version.data.users)) if users is None else np.asarray(users, dtype=np.int64)
    rows = rows[~placeholders(version.data.users[rows])]  # scrubbed rows are nobody's: no lists for them
    written = dict.fromkeys(surfaces, 0)
    skip = None if tombstones is None else forgotten_since_made(tombstones, version)
    pool = max(discover_weekly.POOL, daily_mix.POOL, home.POOL)
    with contextlib.ExitStack() as stack:
        # Every listener's lists replace the surface's as one batch (``OnlineStore.replacing_lists``: a snapshot
        # published at the end, in the embedded store); some listeners' are put one by one among the others'.
        writers: dict[str, ListWriter] = {
            surface: stack.enter_context(store.replacing_lists(surface, skip)) if users is None
            else PutLists(store, surface, skip)
            for surface in surfaces
        }  # fmt: skip
        for lo in range(0, len(rows), BLOCK):
            block = rows[lo : lo + BLOCK]
            ranked = version.recommender.recommend(block, pool, exclude_seen=True).items
            ids = version.data.users[block].astype(str)
            treated = [treatment_of(user_id) for user_id in ids.tolist()]
            for surface in surfaces:
                values = (
                    (
                        user_id,
                        encode(version, surface, day, compute(version, surface, user_id, day, candidates, t), t,
                               user_id),
                    )
                    for user_id, candidates, t in zip(ids.tolist(), ranked, treated, strict=True)
                )  # fmt: skip
                written[surface] += writers[surface].write(values)
            if on_progress is not None:
                on_progress(lo + len(block))
    return written
