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


def test_a_verified_token_is_not_hashed_again_until_the_key_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playnext.api import keys

    admin = KeyStore(tmp_path / "keys.json")
    key, token = admin.create(["read"])
    served = KeyStore(tmp_path / "keys.json", recheck_s=0)  # looks at the file on every call
    hashed: list[str] = []
    real_hash = keys._hash
    monkeypatch.setattr(keys, "_hash", lambda secret: hashed.append(secret) or real_hash(secret))
    assert [served.verify(token) for _ in range(50)] == [key] * 50 and len(hashed) == 1
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # the same key id, another secret
    assert served.verify(wrong) is None and served.verify(wrong) is None and len(hashed) == 3  # never kept
    admin.revoke(key.key_id)
    assert served.verify(token) is None  # the file changed: verified afresh, and refused


def test_the_verified_tokens_kept_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from playnext.api import keys

    monkeypatch.setattr(keys, "VERIFIED_MAX", 3)
    admin = KeyStore(tmp_path / "keys.json")
    tokens = [admin.create(["read"])[1] for _ in range(7)]
    served = KeyStore(tmp_path / "keys.json")
    for token in tokens:
        assert served.verify(token) is not None
        assert len(served._verified) <= 3
    assert all(served.verify(token) is not None for token in tokens)
