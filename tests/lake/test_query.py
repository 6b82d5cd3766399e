from __future__ import annotations

import msgspec

from playnext.catalog.store import import_catalog
from playnext.config import Settings
from playnext.events.compaction import compact
from playnext.events.log import event_log_for
from playnext.events.schema import EVENT_DECODER
from playnext.lake.query import VIEWS, connect
from tests.conftest import event


def test_every_view_exists_on_a_fresh_install(settings: Settings) -> None:
    con = connect(settings)
    for view in VIEWS:
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)
    columns = [r[0] for r in con.execute("DESCRIBE events").fetchall()]
    assert {"event_id", "ts", "ms_played", "date"} <= set(columns)


def test_events_and_catalog_join(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with event_log_for(settings) as log:
        log.append([EVENT_DECODER.decode(msgspec.json.encode(event(item_id=t))) for t in ("t1", "t1", "t2")])
    compact(settings.log_dir, settings.lake_dir)
    tracks = tmp_path / "tracks.ndjson"
    tracks.write_text(
        '{"id":"t1","name":"One","artist_id":"a","duration_ms":200000}\n'
        '{"id":"t2","name":"Two","artist_id":"a","duration_ms":200000}\n'
    )
    import_catalog(tracks, settings.catalog_dir)
    con = connect(settings)
    got = con.execute(
        "SELECT t.name, count(*) FROM events e JOIN tracks t ON e.item_id = t.id GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert got == [("One", 2), ("Two", 1)]
    assert con.execute("SELECT DISTINCT CAST(date AS VARCHAR) FROM events").fetchall() == [("2026-11-20",)]
