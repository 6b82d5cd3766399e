"""Model versions: immutable directories, a served pointer switched atomically, rollback, integrity checks.

Layout under ``models_dir``::

    versions/<id>/manifest.json      parameters, data snapshot, metrics, code version, sha256 of every file
    versions/<id>/recommender/…      generators, ranker, item side features
    versions/<id>/data/…             ids, histories, sequences the version serves with
    CURRENT                          {"version": id, "history": [earlier served ids, newest last]}

A version is built in a staging directory and appears under ``versions/`` by one rename, with its manifest
written last inside it: a crash leaves no half-written version. Loading re-hashes every file, so a version that
was damaged later (a truncated file, a stray edit) is refused with the file named, and whatever was serving
keeps serving. ``CURRENT`` is replaced by an atomic rename, so readers see the old or the new pointer, never a mix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from playnext import __version__
from playnext.config import Settings
from playnext.durable import atomic_write, fsync_dir
from playnext.models.interactions import Interactions, load_interactions_dir, save_interactions
from playnext.models.recommender import Recommender

MANIFEST = "manifest.json"
POINTER = "CURRENT"
# Rewritten whenever a version's files are (``reseal``): every process serving a version from memory watches it
# as it watches the pointer, and loads the version again.
RESEALED = "RESEALED"


class RegistryError(RuntimeError):
    pass


class CorruptVersion(RegistryError):
    pass


class UnknownVersion(RegistryError):
    pass


T = TypeVar("T")


@dataclass
class ModelVersion:
    id: str
    manifest: dict[str, Any]
    recommender: Recommender
    data: Interactions
    # Structures derived from this version once and reused by every request (the search's normalized titles).
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def created_at(self) -> float:
        """When the version was published, in seconds since the epoch: it knows nothing that happened later."""
        return dt.datetime.fromisoformat(self.manifest["created"]).timestamp()

    def derive(self, key: str, compute: Callable[[], T]) -> T:
        """``derived[key]``, computed on first use. Two threads may both compute it once; they get equal values."""
        if key not in self.derived:
            self.derived[key] = compute()
        return self.derived[key]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


class Registry:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.models_dir
        self.versions_dir = self.root / "versions"

    # -- writing -----------------------------------------------------------------------------------------------

    def publish(self, recommender: Recommender, data: Interactions, meta: dict[str, Any]) -> str:
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        created = dt.datetime.now(dt.UTC)
        version_id = created.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
        staging = self.root / f".staging-{version_id}"
        try:
            recommender.save(staging / "recommender")
            save_interactions(data, staging / "data")
            files = {str(p.relative_to(staging)): sha256_of(p) for p in sorted(staging.rglob("*")) if p.is_file()}
            manifest = {
                "id": version_id,
                "created": created.isoformat(),
                "code_version": code_version(),
                **meta,
                "files": files,
            }
            for p in staging.rglob("*"):
                if p.is_file():
                    with open(p, "rb") as fh:
                        os.fsync(fh.fileno())
            _write_manifest(staging, manifest)
            os.replace(staging, self.versions_dir / version_id)
            fsync_dir(self.versions_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version_id

    def reseal(self, version_id: str, note: dict[str, Any]) -> None:
        """After files of a version were rewritten in place (a listener scrubbed from it): hash them again, so the
        version still verifies, record why in its manifest (``scrubbed``), and tell every server (``RESEALED``)
        that what it holds in memory is outdated."""
        directory = self.version_dir(version_id)
        manifest = self.manifest(version_id)
        manifest["files"] = {name: sha256_of(directory / name) for name in manifest.get("files", {})}
        manifest.setdefault("scrubbed", []).append(note)
        _write_manifest(directory, manifest)
        atomic_write(self.root / RESEALED, json.dumps({"version": version_id, **note}, default=str).encode())

    def _pointer(self) -> dict[str, Any]:
        path = self.root / POINTER
        if not path.is_file():
            return {"version": None, "history": []}
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as exc:
            raise RegistryError(f"{path} is unreadable ({exc}); promote a version to rewrite it") from exc

    def _write_pointer(self, pointer: dict[str, Any]) -> None:
        atomic_write(self.root / POINTER, json.dumps(pointer, sort_keys=True).encode())

    def promote(self, version_id: str) -> None:
        """Serve ``version_id``: it is verified first, so a damaged version never becomes current."""
        self.verify(version_id)
        pointer = self._pointer()
        if pointer["version"] == version_id:
            return
        history = [*pointer["history"], pointer["version"]] if pointer["version"] else pointer["history"]
        self._write_pointer({"version": version_id, "history": history[-50:]})

    def rollback(self) -> str:
        """Serve the version served before the current one again."""
        pointer = self._pointer()
        history = list(pointer["history"])
        while history:
            previous = history.pop()
            try:
                self.verify(previous)
            except RegistryError:
                continue  # a damaged or deleted earlier version is skipped, not served
            self._write_pointer({"version": previous, "history": history})
            return previous
        raise RegistryError("no earlier version to roll back to")

    # -- reading -----------------------------------------------------------------------------------------------

    def current_id(self) -> str | None:
        return self._pointer()["version"]

    def ids(self) -> list[str]:
        """Every published version, oldest first (not verified: see ``list``)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(d.name for d in self.versions_dir.iterdir() if d.is_dir() and not d.name.startswith("."))

    def version_dir(self, version_id: str) -> Path:
        directory = self.versions_dir / version_id
        if not directory.is_dir() or "/" in version_id or version_id.startswith("."):
            raise UnknownVersion(f"no model version {version_id!r} in {self.versions_dir}")
        return directory

    def manifest(self, version_id: str) -> dict[str, Any]:
        directory = self.version_dir(version_id)
        try:
            return json.loads((directory / MANIFEST).read_text())
        except FileNotFoundError:
            raise CorruptVersion(f"model version {version_id} has no {MANIFEST}: it is incomplete") from None
        except json.JSONDecodeError as exc:
            raise CorruptVersion(f"model version {version_id}: {MANIFEST} is not valid JSON ({exc})") from None

    def verify(self, version_id: str) -> dict[str, Any]:
        manifest = self.manifest(version_id)
        directory = self.versions_dir / version_id
        for name, digest in manifest.get("files", {}).items():
            path = directory / name
            if not path.is_file():
                raise CorruptVersion(f"model version {version_id}: {name} is missing")
            if sha256_of(path) != digest:
                raise CorruptVersion(f"model version {version_id}: {name} does not match its checksum")
        return manifest

    def load(self, version_id: str) -> ModelVersion:
        manifest = self.verify(version_id)
        directory = self.versions_dir / version_id
        try:
            data = load_interactions_dir(directory / "data")
            recommender = Recommender.load(directory / "recommender")
        except Exception as exc:  # a file that hashes right but cannot be read: written by another code version
            raise CorruptVersion(f"model version {version_id} cannot be loaded: {exc}") from exc
        recommender.use_history(data.matrix)
        return ModelVersion(id=version_id, manifest=manifest, recommender=recommender, data=data)

    def list(self) -> list[dict[str, Any]]:
        out = []
        current = self.current_id()
        for version_id in self.ids():
            try:
                manifest = self.verify(version_id)  # hashes every file: a listing never vouches for damage
                status = "served" if version_id == current else "ok"
            except RegistryError as exc:
                manifest, status = {"id": version_id}, f"corrupt: {exc}"
            out.append({**manifest, "status": status})
        return out
