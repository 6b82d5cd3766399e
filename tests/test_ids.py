"""Server-made ids: unique within a process and across a fork."""

from __future__ import annotations

import os

from playnext.ids import unique_id


def test_ids_never_repeat_within_a_process() -> None:
    ids = [unique_id("x") for _ in range(10_000)]
    assert len(set(ids)) == len(ids) and all(i.startswith("x") and len(i) >= 18 for i in ids)


def test_a_forked_child_draws_its_own_prefix() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its next id and leaves at once
        os.write(write, unique_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    mine = unique_id()
    assert child[:16] != mine[:16]
