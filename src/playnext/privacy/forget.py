"""Forgetting a listener on request: their events, features, lists, sessions and model rows, everywhere at once.

In order, each step safe to repeat if the previous run died half-way:

1. a tombstone (``privacy.tombstones``), first, so that nothing arriving meanwhile can bring the data back;
2. the event log: the active segment is sealed and every sealed segment compacted into the lake (compaction drops
   tombstoned events), after which compaction deletes the segments;
3. the lake: every file of the ``events`` table and of each feature table holding the listener's rows is rewritten
   without them, and swapped in by one manifest commit per table (the old files are then deleted);
4. the online store: precomputed lists and recent plays;
5. model versions: the listener's id in a version's training data becomes an anonymous placeholder, and every
   per-listener array (their interactions, their factors) is zeroed; ``Registry.reseal`` hashes the files again,
   so the version still verifies, and records the scrub in its manifest. A model's item side, learned from
   everyone, stays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playnext.config import Settings
from playnext.events.compaction import compact
from playnext.events.lake_events import events_table
from playnext.events.log import LogLocked, event_log_for
from playnext.events.log_service import AnyLog
from playnext.lake.table import LakeTable
from playnext.models.registry import Registry
from playnext.online.store import OnlineStore
from playnext.privacy.tombstones import Tombstones, placeholder_id


class LogBusy(RuntimeError):
    """A running server holds the event log; only it can seal the listener's newest events."""


@dataclass
class ForgetReport:
    user_id: str
    forgotten_at: str
    lake_rows: dict[str, int] = field(default_factory=dict)  # table → rows removed
    files_rewritten: int = 0
    segments_compacted: int = 0
    model_versions: list[str] = field(default_factory=list)  # versions scrubbed


def forget_user(
    settings: Settings, user_id: str, store: OnlineStore, *, event_log: AnyLog | None = None
) -> ForgetReport:
    at = Tombstones(settings.tombstones_file).add(user_id)
    report = ForgetReport(user_id, dt.datetime.fromtimestamp(at, dt.UTC).isoformat())
    if event_log is not None:
        event_log.rotate()
    else:
        try:
            with event_log_for(settings) as own:
                own.rotate()
        except LogLocked as exc:
            raise LogBusy(f"{exc}; ask the server instead: DELETE /v1/users/{{id}} with an admin key") from None
    compacted = compact(
        settings.log_dir, settings.lake_dir, segment_max_bytes=settings.segment_max_bytes,
        commit_bytes=settings.compact_commit_bytes, tombstones=Tombstones(settings.tombstones_file),
    )  # fmt: skip
    report.segments_compacted = len(compacted.segments)
    tables = [events_table(settings.lake_dir)]
    if settings.features_dir.is_dir():
        tables += [LakeTable(d) for d in sorted(settings.features_dir.iterdir()) if d.is_dir()]
    for table in tables:
        rows, files = scrub_table(table, user_id)
        report.lake_rows[table.name] = rows
        report.files_rewritten += files
    store.forget(user_id)
    report.model_versions = scrub_models(settings, user_id, report.forgotten_at)
    return report


def scrub_table(table: LakeTable, user_id: str) -> tuple[int, int]:
    """Rewrite the files of ``table`` that hold rows of ``user_id`` without them: (rows removed, files)."""
    manifest = table.manifest()
    add, remove, removed = [], [], 0
    for entry in manifest.files:
        path = table.directory / entry.path
        if "user_id" not in pq.read_schema(path).names:
            continue
        ids = pq.read_table(path, columns=["user_id"])["user_id"]
        hits = pc.sum(pc.equal(ids, user_id)).as_py() or 0
        if not hits:
            continue
        whole = pq.read_table(path)
        kept = whole.filter(pc.fill_null(pc.not_equal(whole["user_id"], user_id), True))
        if kept.num_rows:
            add.append(table.write_file(kept, entry.partition, tag="forget"))
        remove.append(entry.path)
        removed += hits
    if remove:
        table.commit(add=add, remove=remove, expect_version=manifest.version)
    return removed, len(remove)


def scrub_models(settings: Settings, user_id: str, when: str) -> list[str]:
    """Scrub the listener from every model version that was trained on them; returns those versions' ids."""
    registry = Registry(settings)
    scrubbed = []
    for version_id in registry.ids():
        version = registry.version_dir(version_id)
        users_file = version / "data" / "users.parquet"
        if not users_file.exists():
            continue
        users = pq.read_table(users_file)
        ids = users["id"].to_pylist()
        if user_id not in ids:
            continue
        row = ids.index(user_id)
        ids[row] = placeholder_id()
        pq.write_table(users.set_column(users.schema.get_field_index("id"), "id", pa.array(ids, pa.string())),
                       users_file)  # fmt: skip
        for npz in sorted(version.rglob("*.npz")):
            # Only arrays known to be per listener: shapes alone cannot tell (a catalog can have exactly as many
            # items as there are listeners).
            _zero_listener_rows(npz, row, len(ids), ragged=npz.name == "history.npz")
        registry.reseal(version_id, {"at": when, "reason": "a listener's data was deleted on request"})
        scrubbed.append(version_id)
    return scrubbed


def _zero_listener_rows(path: Path, row: int, n_users: int, *, ragged: bool) -> None:
    """Remove the listener from one ``.npz``: their row of every listener-factor array (named ``user…``, first
    axis = listeners) is zeroed, and in a version's history (``ragged``) their entries of every structure indexed
    by a pointer over listeners (``indptr``, ``played_indptr``, ``seq_ptr`` with the arrays sharing its prefix)
    are cut out."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    changed = False
    pointers = [k for k in arrays if ragged and k.endswith(("indptr", "_ptr")) and arrays[k].shape == (n_users + 1,)]
    prefixes = {name: name.removesuffix("indptr").removesuffix("ptr") for name in pointers}
    for name in pointers:
        ptr = arrays[name].copy()
        prefix = prefixes[name]
        longer = [p for p in prefixes.values() if len(p) > len(prefix) and p.startswith(prefix)]
        lo, hi = int(ptr[row]), int(ptr[row + 1])
        group = [k for k in arrays if k.startswith(prefix) and not k.startswith(tuple(longer)) and k not in pointers
                 and arrays[k].ndim == 1 and len(arrays[k]) == ptr[-1]]  # fmt: skip
        for other in group:
            arrays[other] = np.delete(arrays[other], np.s_[lo:hi])
        ptr[row + 1 :] -= hi - lo
        arrays[name] = ptr
        changed = changed or hi > lo
    for name, array in arrays.items():
        per_listener = name.rsplit(".", 1)[-1].startswith("user") and array.ndim == 2 and array.shape[0] == n_users
        if name not in pointers and per_listener and array.dtype.kind == "f":
            array[row] = 0
            changed = True
    if changed:
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
