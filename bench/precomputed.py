"""What a precomputed answer costs to read and fill, without HTTP, and what its stored value weighs.

    python bench/precomputed.py --data DIR [--users 10000] [--tracks 10000] [--days 7] [--sample 2000]

For Discover Weekly and Daily Mix, over ``--sample`` listeners drawn at random from the published snapshots
(``online.snapshot``), each step of an answer as serving takes it:
- ``read``: the value's lookup in the snapshot;
- ``rendered``: ``current_pages`` for the rendered (default) length, and ``Rendered.fill``: what a default request
  does with the value;
- ``pages`` (the baseline, same run, same listeners): ``current_pages`` for one item fewer, which unpacks and
  decodes the pages, and the answer and exposures built from them as the routes build any other length;
- ``unpack``: the pages' unpacking and decoding alone.

It also gives the values' mean size, and their pages' packed and unpacked sizes. A world made here (``--data``
without a model) is simulated, trained and precomputed with ``bench/serving.py``'s stack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import world

from playnext.config import load_settings
from playnext.events.schema import encode_lines
from playnext.models.registry import ModelVersion, Registry
from playnext.online.snapshot import Snapshots
from playnext.surfaces import precomputed
from playnext.surfaces.answer import listener_answer
from playnext.surfaces.exposure import listener_impressions
from playnext.surfaces.precomputed import StoredPages

REQUEST_ID, VARIANT, EXPOSURE = "0123456789abcdef0123456789abcdef", "dw-length:b", "00112233445566778899"


def best_of(rounds: int, step: Callable[[str], object], users: list[str]) -> float:
    """µs per call, the best of ``rounds`` passes over ``users`` (the machine's noise only slows a pass)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for user in users:
            step(user)
        best = min(best, (time.perf_counter() - started) / len(users) * 1e6)
    return best


def measure(surface: str, version: ModelVersion, snapshots: Snapshots, users: list[str], rounds: int) -> str:
    """The surface's row of the table."""
    day, at, size = dt.datetime.now(dt.UTC).date(), dt.datetime.now(dt.UTC), precomputed.RENDERED_SIZE[surface]
    values = {user: value for user in users if (value := snapshots.get(surface, user)) is not None}
    if not values:
        return f"{surface:16} no published snapshot holds these listeners"
    found = list(values)

    def rendered(user: str) -> object:
        paged = precomputed.current_pages(values[user], version, surface, day, size=size)
        assert paged.rendered is not None
        return paged.rendered.fill(REQUEST_ID, VARIANT, "precomputed", EXPOSURE, at)

    def from_pages(user: str) -> object:
        pages = precomputed.current_pages(values[user], version, surface, day, size=size - 1).pages
        assert pages is not None
        lists = [shown.first(size - 1) for shown in pages]
        body = listener_answer(surface, user, version.id, lists, REQUEST_ID, VARIANT, "precomputed")
        lines = listener_impressions(lists, user, REQUEST_ID, VARIANT, at, EXPOSURE)
        return msgspec.json.encode(body), encode_lines(lines)

    # the pages field as ``current_pages`` meets it: a MessagePack bin
    fields = {user: msgspec.Raw(msgspec.msgpack.encode(msgspec.msgpack.decode(value, type=StoredPages).pages))
              for user, value in values.items()}  # fmt: skip
    read = best_of(rounds, lambda user: snapshots.get(surface, user), found)
    answer, baseline = best_of(rounds, rendered, found), best_of(rounds, from_pages, found)
    unpack = best_of(rounds, lambda user: precomputed.unpack_pages(fields[user]), found)
    unpacked = [len(msgspec.msgpack.encode(precomputed.unpack_pages(field))) for field in fields.values()]
    return (f"{surface:16} {read:8.2f} {answer:12.2f} {baseline:9.2f} {answer / baseline:8.3f} {unpack:10.2f} "
            f"{np.mean([len(v) for v in values.values()]):8.0f} {np.mean([len(f) for f in fields.values()]):9.0f} "
            f"{np.mean(unpacked):8.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the world (made here when it has no model)")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    world(args.data, args.users, args.tracks, args.days, batch=not (args.data / "online" / "online.lists").exists())
    settings = load_settings(data_dir=args.data)
    registry = Registry(settings)
    version = registry.load(registry.current_id() or "")
    snapshots = Snapshots(settings.data_dir / "online" / "online.lists")
    everyone = version.data.users.astype(str)
    users = np.random.default_rng(0).choice(everyone, min(args.sample, len(everyone)), replace=False).tolist()
    print(f"{len(users)} listeners of {len(everyone)}, best of {args.rounds} passes")
    print(f"{'surface':16} {'read µs':>8} {'rendered µs':>12} {'pages µs':>9} {'× pages':>8} {'unpack µs':>10} "
          f"{'value B':>8} {'packed B':>9} {'pages B':>8}")  # fmt: skip
    for surface in sorted(precomputed.PAGED):
        print(measure(surface, version, snapshots, users, args.rounds), flush=True)


if __name__ == "__main__":
    main()
