"""A lake table: Parquet files plus one manifest that says which files are the table.

Readers trust the manifest, never a directory listing. A writer puts new files aside under unique names, fsyncs
them, and then replaces the manifest with an atomic rename, so a crash at any point leaves either the old or the
new table: a file written but not yet in the manifest is invisible and is swept up later. The manifest also
carries the writer's bookkeeping (``meta``), e.g. which log segments compaction has already folded in, so that
"files added" and "work done" change in the same rename.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from playnext.durable import atomic_write, file_lock, fsync_dir

MANIFEST = "_manifest.json"
# Files that no manifest names are deleted only when older than this, so a concurrent writer's files that are
# written but not yet committed are never swept away under it.
ORPHAN_AGE_S = 3600.0


class DataFile(msgspec.Struct, frozen=True):
    path: str  # relative to the table directory
    rows: int
    bytes: int
    partition: str | None = None


class Manifest(msgspec.Struct):
    version: int = 0
    files: list[DataFile] = msgspec.field(default_factory=list)
    meta: dict[str, Any] = msgspec.field(default_factory=dict)
    committed_at: float = 0.0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


class LakeTable:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def name(self) -> str:
        return self.directory.name

    def manifest(self) -> Manifest:
        path = self.directory / MANIFEST
        if not path.exists():
            return Manifest()
        try:
            return msgspec.json.decode(path.read_bytes(), type=Manifest)
        except msgspec.DecodeError as exc:
            raise RuntimeError(f"the manifest {path} is unreadable ({exc}); the table cannot be trusted") from exc

    def file_paths(self) -> list[Path]:
        return [self.directory / f.path for f in self.manifest().files]

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.directory / "_manifest.lock")

    def write_file(self, table: pa.Table, partition: str | None = None, *, tag: str = "part") -> DataFile:
        """Write one Parquet file aside (not yet part of the table) and return its entry for ``commit``."""
        sub = self.directory / partition if partition else self.directory
        sub.mkdir(parents=True, exist_ok=True)
        name = f"{tag}-{uuid.uuid4().hex}.parquet"
        final = sub / name
        tmp = sub / f".{name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_dir(sub)
        return DataFile(
            path=str(final.relative_to(self.directory)),
            rows=table.num_rows,
            bytes=final.stat().st_size,
            partition=partition,
        )

    def commit(
        self,
        add: list[DataFile] = (),  # type: ignore[assignment]
        remove: list[str] = (),  # type: ignore[assignment]
        meta: dict[str, Any] | None = None,
        expect_version: int | None = None,
    ) -> Manifest:
        """Make ``add`` part of the table and drop ``remove``, atomically; ``meta`` keys are merged in."""
        with self._locked():
            current = self.manifest()
            if expect_version is not None and current.version != expect_version:
                raise RuntimeError(
                    f"table {self.name} changed under this writer (version {current.version}, "
                    f"expected {expect_version}); run again"
                )
            removing = set(remove)
            files = [f for f in current.files if f.path not in removing] + list(add)
            new = Manifest(
                version=current.version + 1,
                files=files,
                meta={**current.meta, **(meta or {})},
                committed_at=time.time(),
            )
            atomic_write(self.directory / MANIFEST, msgspec.json.format(msgspec.json.encode(new)))
        for path in removing:
            (self.directory / path).unlink(missing_ok=True)
        return new

    def sweep_orphans(self, min_age_s: float = ORPHAN_AGE_S) -> list[Path]:
        """Delete data files that no manifest names (left by a crashed writer), if old enough to be dead."""
        if not self.directory.exists():
            return []
        with self._locked():
            known = {f.path for f in self.manifest().files}
            now = time.time()
            gone = []
            for path in self.directory.rglob("*"):
                if not path.is_file() or path.name in (MANIFEST, "_manifest.lock"):
                    continue
                rel = str(path.relative_to(self.directory))
                if rel not in known and now - path.stat().st_mtime >= min_age_s:
                    path.unlink()
                    gone.append(path)
            return gone

    def read(self, columns: list[str] | None = None) -> pa.Table | None:
        paths = self.file_paths()
        if not paths:
            return None
        return pa.concat_tables(pq.read_table(p, columns=columns) for p in paths)
