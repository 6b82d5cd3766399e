from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from playnext.catalog.schema import KINDS
from playnext.catalog.store import UnknownKind, catalog_table, import_catalog


def write_ndjson(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"\n".join(msgspec.json.encode(r) for r in rows) + b"\n")
    return path


def test_tracks_from_csv_with_pipe_separated_genres(tmp_path: Path) -> None:
    path = tmp_path / "tracks.csv"
    path.write_text(
        "id,name,artist_id,album_id,duration_ms,genres,release_date,language\n"
        "t1,Song One,ar1,al1,201000,rock|indie,2024-05-01,en\n"
        "t2,Song Two,ar1,,185000,,2024-05-01,pt-BR\n"
        "t3,Broken,ar2,al2,-5,rock,2024-05-01,en\n"
    )
    report = import_catalog(path, tmp_path / "catalog")
    assert report.kind == "tracks" and report.imported == 2
    assert report.rejected.shown[0][0] == 4 and "duration_ms" in report.rejected.shown[0][1]
    rows = {r["id"]: r for r in catalog_table(tmp_path / "catalog", "tracks").read().to_pylist()}
    assert rows["t1"]["genres"] == ["rock", "indie"] and rows["t2"]["album_id"] is None
    assert str(rows["t1"]["release_date"]) == "2024-05-01"


def test_reimport_replaces_records_with_the_same_id(tmp_path: Path) -> None:
    cat = tmp_path / "catalog"
    first = write_ndjson(tmp_path / "artists.ndjson", [{"id": "a1", "name": "Old"}, {"id": "a2", "name": "Two"}])
    import_catalog(first, cat)
    second = write_ndjson(tmp_path / "artists2.ndjson", [{"id": "a1", "name": "New", "genres": ["jazz"]}])
    report = import_catalog(second, cat, "artists")
    assert report.replaced == 1 and report.total == 2
    rows = {r["id"]: r for r in catalog_table(cat, "artists").read().to_pylist()}
    assert rows["a1"]["name"] == "New" and rows["a2"]["name"] == "Two"


@pytest.mark.parametrize(
    ("kind", "record"),
    [
        ("albums", {"id": "al1", "name": "A", "artist_id": "ar1", "release_date": "2020-01-01"}),
        ("shows", {"id": "s1", "name": "Daily", "publisher": "P", "language": "en"}),
        ("episodes", {"id": "e1", "name": "Ep", "show_id": "s1", "duration_ms": 1_800_000}),
        ("audiobooks", {"id": "b1", "name": "Book", "author": "Au", "duration_ms": 36_000_000}),
    ],
)
def test_every_kind_imports(tmp_path: Path, kind: str, record: dict) -> None:
    assert kind in KINDS
    report = import_catalog(write_ndjson(tmp_path / "x.ndjson", [record]), tmp_path / "catalog", kind)
    assert report.imported == 1 and not report.rejected.shown


def test_hostile_records_are_rejected_and_the_stored_catalog_survives(tmp_path: Path) -> None:
    cat = tmp_path / "catalog"
    import_catalog(write_ndjson(tmp_path / "artists.ndjson", [{"id": "a1", "name": "Keep"}]), cat)
    hostile = [
        {"id": "a\x002", "name": "nul"},
        {"id": "a3", "name": "x" * 10_000},
        {"id": "a4", "name": "ok", "genres": ["g"] * 100},
        {"id": "a5", "name": "ok", "rank": 1},
        {"id": "a6", "name": [[[[["deep"]]]]]},
    ]
    report = import_catalog(write_ndjson(tmp_path / "bad.ndjson", hostile), cat, "artists")
    assert report.imported == 0 and report.rejected.count == 5
    assert [r["id"] for r in catalog_table(cat, "artists").read().to_pylist()] == ["a1"]


def test_unknown_kind_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownKind, match="cannot tell"):
        import_catalog(write_ndjson(tmp_path / "stuff.ndjson", [{"id": "x"}]), tmp_path / "catalog")
    with pytest.raises(UnknownKind, match="unknown catalog kind"):
        import_catalog(write_ndjson(tmp_path / "stuff.ndjson", [{"id": "x"}]), tmp_path / "catalog", "videos")
