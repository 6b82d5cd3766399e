"""A character-trigram index over catalog titles: which titles a fuzzy text match should score at all.

Search scores titles with rapidfuzz's weighted ratio, a few hundred nanoseconds a title in C++, but every title on
every query: 50-70 ms at 130k titles, and linear in the catalog. The index narrows that to the ``limit`` titles
that share the most trigrams with the query (a typo changes at most three of a word's trigrams, so the intended
title still shares most of its own), and only those are scored. What it can give up: a title that matches well
while sharing fewer trigrams than ``limit`` others is not found, and among many equally good matches (thousands
of titles contain "ven") the ones shown may differ from a full scan's. ``bench/search.py`` measures both, and the
pool search uses (``surfaces.search.POOL``) is sized by it. A query that shares no trigram with any title is left
to the full scan.

Titles are padded as ``"  title "``, so a title's first letters and word ends make trigrams of their own and a
one- or two-letter query still has some. Built with NumPy (code points packed three to an integer), a block of
titles at a time; a posting list per trigram is a row of a sparse matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BLOCK = 8_192  # titles encoded at a time: memory is a block times its longest title (int64 per character)
_BITS = 21  # a Unicode code point fits in 21 bits, so three make one int64


def _grams(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(text number, trigram code) for every distinct trigram of each padded text."""
    padded = np.array([f"  {t} " for t in texts])
    width = padded.dtype.itemsize // 4
    points = padded.view(np.uint32).reshape(len(texts), width).astype(np.int64)
    codes = (points[:, :-2] << (2 * _BITS)) | (points[:, 1:-1] << _BITS) | points[:, 2:]
    lengths = np.char.str_len(padded)
    codes[np.arange(width - 2)[None, :] >= (lengths - 2)[:, None]] = -1  # past a text's end
    codes.sort(axis=1)  # a text's repeated trigrams side by side, the padding's -1 first
    distinct = codes != -1
    distinct[:, 1:] &= codes[:, 1:] != codes[:, :-1]
    return np.nonzero(distinct)[0], codes[distinct]


class TrigramIndex:
    def __init__(self, titles: list[str]) -> None:
        """``titles``: normalized as the queries will be (rapidfuzz's ``default_process``)."""
        self.size = len(titles)
        # Blocks of titles of about one length, shortest first: a block is as wide as its longest title (catalog
        # names go up to 512 characters), so a few long ones do not widen every block.
        by_length = np.argsort([len(t) for t in titles], kind="stable")
        rows, codes = [], []
        for lo in range(0, len(titles), BLOCK):
            block = by_length[lo : lo + BLOCK]
            r, c = _grams([titles[i] for i in block.tolist()])
            rows.append(block[r])
            codes.append(c)
        row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        code = np.concatenate(codes) if codes else np.zeros(0, np.int64)
        self.vocabulary, column = np.unique(code, return_inverse=True)
        # One row of title numbers per trigram: a query's postings are the rows of its trigrams.
        self.postings = sp.csr_matrix(
            (np.ones(len(row), np.int8), (column, row)), shape=(len(self.vocabulary), self.size)
        )

    def candidates(self, query: str, limit: int) -> np.ndarray | None:
        """Title numbers, at most ``limit``, that share the most trigrams with ``query`` (ties: catalog order),
        in catalog order; None when it shares none with any title."""
        _, code = _grams([query])
        if not len(self.vocabulary):
            return None
        at = np.minimum(np.searchsorted(self.vocabulary, code), len(self.vocabulary) - 1)
        found = at[self.vocabulary[at] == code]
        if not len(found):
            return None
        shared = np.bincount(self.postings[found].indices, minlength=self.size)
        hits = np.flatnonzero(shared)
        if len(hits) > limit:
            # More shared trigrams first, then the earlier title: one integer key, so the cut is deterministic.
            key = shared[hits].astype(np.int64) * (self.size + 1) - hits
            hits = np.sort(hits[np.argpartition(-key, limit - 1)[:limit]])
        return hits
