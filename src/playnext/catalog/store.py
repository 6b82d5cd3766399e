"""Importing and reading the catalog: one lake table per kind, upserted by ``id`` (the newest record wins).

A re-import of a corrected file replaces the old rows instead of duplicating them, and the whole kind is swapped
in one manifest commit, so a reader never sees half an import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from playnext.catalog.schema import KINDS, arrow_schema
from playnext.lake.table import LakeTable
from playnext.records import RejectedLines, read_chunks


class UnknownKind(ValueError):
    pass


@dataclass
class CatalogImport:
    path: Path
    kind: str
    imported: int = 0
    replaced: int = 0
    total: int = 0
    rejected: RejectedLines = field(default_factory=RejectedLines)


def catalog_table(catalog_dir: Path, kind: str) -> LakeTable:
    if kind not in KINDS:
        raise UnknownKind(f"unknown catalog kind {kind!r}; choose one of {', '.join(KINDS)}")
    return LakeTable(catalog_dir / kind)


def guess_kind(path: Path) -> str:
    stem = path.name.split(".")[0].lower()
    if stem in KINDS:
        return stem
    raise UnknownKind(f"{path}: cannot tell the catalog kind from the name; pass --kind ({', '.join(KINDS)})")


def _decode(raw: Any, cls: type) -> Any:
    if not isinstance(raw, dict):
        return msgspec.json.decode(raw, type=cls)
    # Rows from CSV and Parquet: empty cells are absent fields, "1200" may be an int, genres "rock|indie pop".
    record = {k: v for k, v in raw.items() if v not in (None, "")}
    genres = record.get("genres")
    if isinstance(genres, str):
        record["genres"] = [g.strip() for g in genres.split("|") if g.strip()]
    return msgspec.convert(record, cls, strict=False)


def import_catalog(
    path: Path,
    catalog_dir: Path,
    kind: str | None = None,
    *,
    fmt: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> CatalogImport:
    kind = kind or guess_kind(path)
    table = catalog_table(catalog_dir, kind)
    cls = KINDS[kind]
    report = CatalogImport(path=path, kind=kind)
    rows: dict[str, dict[str, Any]] = {}
    for chunk in read_chunks(path, fmt):
        for line, reason in chunk.errors:
            report.rejected.add(line, reason)
        for line, raw in zip(chunk.lines, chunk.records, strict=True):
            try:
                record = _decode(raw, cls)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                report.rejected.add(line, str(exc)[:300])
                continue
            except RecursionError:
                report.rejected.add(line, "the record is nested too deeply")
                continue
            rows[record.id] = msgspec.structs.asdict(record)  # a later line with the same id wins
        if on_progress:
            on_progress(chunk.bytes_read)
    report.imported = len(rows)
    report.rejected.shown.sort()
    if not rows:
        report.total = table.manifest().rows
        return report
    schema = arrow_schema(kind)
    fresh = pa.Table.from_pylist(list(rows.values()), schema=schema)
    old = table.read()
    if old is not None:
        keep = pc.invert(pc.is_in(old["id"], value_set=fresh["id"]))
        report.replaced = old.num_rows - pc.sum(keep.cast(pa.int64())).as_py()
        merged = pa.concat_tables([old.cast(schema).filter(keep), fresh])
    else:
        merged = fresh
    current = table.manifest()
    added = table.write_file(merged)
    table.commit(add=[added], remove=[f.path for f in current.files], expect_version=current.version)
    report.total = merged.num_rows
    return report
