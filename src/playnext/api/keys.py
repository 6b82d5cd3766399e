"""API keys: scoped, stored only as hashes, listed and revoked from the CLI.

A key reads ``pn_<key id>_<secret>``. The id finds the record without scanning; the secret is 32 random bytes, so
a single SHA-256 is enough (slow password hashes defend low-entropy secrets, which these are not) and keeps the
check in microseconds on every request. The file is replaced atomically under a lock, so concurrent ``keys
create`` calls never lose each other's keys, and the server notices changes by the file's mtime: at once for a key
it does not know yet, within ``recheck_s`` (``keys_recheck_s``, 1 s) for a revocation, since looking at the file on
every request cost a tenth of a precomputed answer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Literal

import msgspec

from playnext.durable import ReadWhenChanged, atomic_write, file_lock

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[str, ...] = Scope.__args__  # type: ignore[attr-defined]
VERIFIED_MAX = 10_000  # tokens a server remembers as verified (``KeyStore.verify``)


class ApiKey(msgspec.Struct, frozen=True):
    key_id: str
    name: str
    scopes: list[str]
    secret_sha256: str
    created_at: float
    revoked_at: float | None = None
    # Requests per second this key may make (per replica); None: the server's default, 0: unlimited.
    rate_per_s: float | None = None

    def allows(self, scope: str) -> bool:
        # admin is a superset: an operator's key can do what any client's can.
        return self.revoked_at is None and (scope in self.scopes or "admin" in self.scopes)


class _KeyFile(msgspec.Struct):
    keys: list[ApiKey] = msgspec.field(default_factory=list)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class UnknownKey(LookupError):
    pass


class KeyStore:
    def __init__(self, path: Path, recheck_s: float = 0.0) -> None:
        self.path = Path(path)
        self._live = ReadWhenChanged(
            self.path,
            lambda raw: {k.key_id: k for k in msgspec.json.decode(raw, type=_KeyFile).keys},
            dict,
            recheck_s=recheck_s,
        )
        self._verified: dict[str, ApiKey] = {}  # token → its key, for the key file as ``_verified_for`` read it
        self._verified_for: dict[str, ApiKey] | None = None

    def _read(self) -> _KeyFile:
        if not self.path.exists():
            return _KeyFile()
        return msgspec.json.decode(self.path.read_bytes(), type=_KeyFile)

    def _write(self, content: _KeyFile) -> None:
        atomic_write(self.path, msgspec.json.format(msgspec.json.encode(content)), mode=0o600)

    def _edit(self):  # type: ignore[no-untyped-def]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return file_lock(self.path.with_name(f".{self.path.name}.lock"), mode=0o600)

    def create(self, scopes: list[str], name: str = "", rate_per_s: float | None = None) -> tuple[ApiKey, str]:
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ValueError(f"unknown scope(s) {bad or scopes}; choose from {', '.join(SCOPES)}")
        if rate_per_s is not None and not (0 <= rate_per_s < float("inf")):
            raise ValueError(f"a rate limit is a number of requests per second >= 0, got {rate_per_s}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            key_id=key_id,
            name=name,
            scopes=sorted(set(scopes)),
            secret_sha256=_hash(secret),
            created_at=time.time(),
            rate_per_s=rate_per_s,
        )
        with self._edit():
            content = self._read()
            content.keys.append(key)
            self._write(content)
        return key, f"pn_{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        return self._read().keys

    def revoke(self, key_id: str) -> ApiKey:
        with self._edit():
            content = self._read()
            for i, key in enumerate(content.keys):
                if key.key_id == key_id:
                    revoked = msgspec.structs.replace(key, revoked_at=key.revoked_at or time.time())
                    content.keys[i] = revoked
                    self._write(content)
                    return revoked
        raise UnknownKey(f"no key with id {key_id!r}")

    def verify(self, token: str) -> ApiKey | None:
        """The live key a token belongs to, or None; constant-time in the secret.

        A token verified once is known until the key file changes (which a revocation does; it is looked at
        every ``recheck_s``): hashing the secret and finding the key was a tenth of a precomputed answer's work
        in a loop of requests, and a client sends the same token with every request. Only tokens that verified
        are kept, at most ``VERIFIED_MAX`` (then the cache starts over), so unknown tokens cannot fill it."""
        keys = self._live.get()
        if keys is not self._verified_for:
            self._verified, self._verified_for = {}, keys
        known = self._verified.get(token)
        if known is not None:
            return known
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "pn":
            return None
        key = self._match(keys, parts[1], parts[2])
        if key is None and self._live.recheck_s > 0:  # a key made since the last look works at once
            keys = self._live.get(fresh=True)
            key = self._match(keys, parts[1], parts[2])
        if key is not None and keys is self._verified_for:
            if len(self._verified) >= VERIFIED_MAX:
                self._verified = {}
            self._verified[token] = key
        return key

    @staticmethod
    def _match(keys: dict[str, ApiKey], key_id: str, secret: str) -> ApiKey | None:
        key = keys.get(key_id)
        if key is None or key.revoked_at is not None:
            return None
        return key if hmac.compare_digest(key.secret_sha256, _hash(secret)) else None
