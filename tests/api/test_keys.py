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


def test_a_server_looks_at_the_file_at_most_every_recheck_but_knows_a_new_key_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    from playnext import durable

    admin = KeyStore(tmp_path / "keys.json")
    first, token = admin.create(["read"])
    served = KeyStore(tmp_path / "keys.json", recheck_s=0.3)
    looks = []
    real_stat = os.stat
    monkeypatch.setattr(durable.os, "stat", lambda path, **kw: looks.append(str(path)) or real_stat(path, **kw))
    assert all(served.verify(token) is not None for _ in range(100))
    assert looks.count(str(tmp_path / "keys.json")) == 1  # one look for a hundred requests
    _, newer = admin.create(["read"])
    assert served.verify(newer) is not None  # unknown to the cache: looked up at once
    admin.revoke(first.key_id)
    time.sleep(0.35)
    assert served.verify(token) is None  # a revocation is seen within recheck_s
    assert served.verify("pn_nosuchid_secret") is None
