from __future__ import annotations

import threading
from pathlib import Path

import pytest

from playnext.api.keys import KeyStore, UnknownKey


def test_only_a_hash_of_the_secret_is_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    _, token = store.create(["ingest"], name="mobile app")
    secret = token.split("_", 2)[2]
    assert secret not in (tmp_path / "keys.json").read_text()
    assert store.verify(token) is not None
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0


def test_a_tampered_or_malformed_token_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    _, token = store.create(["ingest"])
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "pn_", "", "pn_x", token.replace("pn_", "pk_")):
        assert store.verify(bad) is None


def test_admin_covers_every_scope_and_others_only_their_own(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    admin, _ = store.create(["admin"])
    ingest, _ = store.create(["ingest"])
    assert admin.allows("ingest") and admin.allows("read")
    assert ingest.allows("ingest") and not ingest.allows("admin")


def test_unknown_scopes_and_keys_are_clear_errors(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    with pytest.raises(ValueError, match="unknown scope"):
        store.create(["root"])
    with pytest.raises(UnknownKey):
        store.revoke("nope")


def test_concurrent_creates_lose_no_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    threads = [threading.Thread(target=lambda: KeyStore(path).create(["read"])) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(KeyStore(path).list()) == 20
