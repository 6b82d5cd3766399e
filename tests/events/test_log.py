from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from playnext.events import framing
from playnext.events.log import EventLog, LogLocked, LogUnavailable, check_lines, list_segments, sealed_segments
from playnext.events.schema import encode_lines
from tests.events.helpers import events, ids_in_log


def test_duplicate_event_id_is_stored_once(tmp_path: Path) -> None:
    batch = events(3)
    with EventLog(tmp_path) as log:
        assert log.append(batch) == [True, True, True]
        assert log.append(batch + events(1, prefix="new")) == [False, False, False, True]
    assert Counter(ids_in_log(tmp_path)) == Counter(["e0", "e1", "e2", "new0"])


def test_duplicate_within_one_batch_is_stored_once(tmp_path: Path) -> None:
    batch = events(2)
    with EventLog(tmp_path) as log:
        assert log.append([batch[0], batch[1], batch[0]]) == [True, True, False]
    assert sorted(ids_in_log(tmp_path)) == ["e0", "e1"]


def test_duplicate_event_id_is_stored_once_across_restarts(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append(events(5))
    with EventLog(tmp_path) as log:
        assert log.append(events(6)) == [False] * 5 + [True]
    assert len(ids_in_log(tmp_path)) == 6


def test_dedup_index_is_rebuilt_from_the_log_if_lost(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append(events(5))
    with EventLog(tmp_path):  # seals the first segment: its ids go to a sidecar
        pass
    sidecars = list(tmp_path.glob("*.ids"))
    assert sidecars
    for path in sidecars:
        path.unlink()
    with EventLog(tmp_path) as log:
        assert log.stats.replayed_events == 5
        assert log.append(events(5)) == [False] * 5


def test_dedup_survives_compaction_deleting_the_segments(tmp_path: Path) -> None:
    from playnext.events.compaction import compact

    log_dir = tmp_path / "log"
    with EventLog(log_dir, segment_max_bytes=4096) as log:
        for i in range(20):
            log.append(events(5, prefix=f"b{i}-"))
    result = compact(log_dir, tmp_path / "lake")
    assert result.events == 100 and ids_in_log(log_dir) == []
    with EventLog(log_dir) as log:
        assert log.append(events(5, prefix="b7-") + events(1, prefix="fresh")) == [False] * 5 + [True]


def test_many_sealed_segments_are_merged_into_few_files_on_start(tmp_path: Path) -> None:
    from playnext.events import dedup

    with EventLog(tmp_path, segment_max_bytes=2048) as log:
        for i in range(3 * dedup.MAX_SIDECARS):
            log.append(events(10, prefix=f"m{i}-"))
    assert len(list(tmp_path.glob("*.ids"))) > dedup.MAX_SIDECARS
    with EventLog(tmp_path) as log:
        assert len(list(tmp_path.glob("*.ids"))) <= 2
        assert not any(log.append(events(10, prefix=f"m{i}-"))[0] for i in range(3 * dedup.MAX_SIDECARS))


@pytest.mark.parametrize("tail", [b"PNF1\x10\x00\x00\x00", b"\x00" * 4096, b"garbage that is not a frame"])
def test_a_torn_tail_is_cut_off_and_the_log_starts(tmp_path: Path, tail: bytes) -> None:
    with EventLog(tmp_path) as log:
        log.append(events(3))
    _, last = list_segments(tmp_path)[-1]
    good_size = last.stat().st_size
    with open(last, "ab") as fh:
        fh.write(tail)
    # The writer always recovers the newest segment, so make the torn one the newest.
    for _seq, path in list_segments(tmp_path):
        if path.stat().st_size == 0:
            path.unlink()
    with EventLog(tmp_path) as log:
        assert log.stats.recovered_bytes_cut == len(tail)
        assert log.append(events(4)) == [False, False, False, True]
    assert last.stat().st_size == good_size
    assert sorted(ids_in_log(tmp_path)) == ["e0", "e1", "e2", "e3"]


def test_a_frame_torn_in_its_payload_is_detected_by_checksum(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append(events(2))
        log.append(events(2, prefix="late"))
    seq, path = [s for s in list_segments(tmp_path) if s[1].stat().st_size][-1]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip a byte inside the last frame's payload
    path.write_bytes(bytes(data))
    for s, p in list_segments(tmp_path):
        if s > seq:
            p.unlink()
    scan = framing.scan(path)
    assert scan.torn and len(scan.frames) == 1
    with EventLog(tmp_path):
        pass
    assert sorted(ids_in_log(tmp_path)) == ["e0", "e1"]


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    with EventLog(tmp_path), pytest.raises(LogLocked, match=str(os.getpid())):
        EventLog(tmp_path).open()


def test_concurrent_batches_share_fsyncs(tmp_path: Path) -> None:
    n_threads, per_thread = 16, 40
    with EventLog(tmp_path) as log:
        barrier = threading.Barrier(n_threads)

        def client(t: int) -> None:
            barrier.wait()
            for i in range(per_thread):
                assert log.append(events(1, prefix=f"t{t}-{i}-")) == [True]

        threads = [threading.Thread(target=client, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert log.stats.events_stored == n_threads * per_thread
        assert log.stats.fsyncs < n_threads * per_thread
    assert len(set(ids_in_log(tmp_path))) == n_threads * per_thread


def test_segments_roll_over_at_the_size_limit_and_older_ones_are_sealed(tmp_path: Path) -> None:
    with EventLog(tmp_path, segment_max_bytes=4096) as log:
        for i in range(30):
            log.append(events(5, prefix=f"b{i}-"))
        active = log.active_segment
    assert len(list_segments(tmp_path)) > 3
    assert all(seq < active for seq, _ in sealed_segments(tmp_path))
    assert len(ids_in_log(tmp_path)) == 150


def test_a_quiet_segment_is_sealed_after_its_maximum_age(tmp_path: Path) -> None:
    with EventLog(tmp_path, segment_max_age_s=0.05) as log:
        log.append(events(2))
        first = log.active_segment
        threading.Event().wait(1.5)
        assert log.active_segment > first


def test_a_failed_write_acknowledges_nothing_and_leaves_no_garbage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fdatasync
    calls = {"n": 0}

    def failing_once(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real(fd)

    with EventLog(tmp_path) as log:
        monkeypatch.setattr(os, "fdatasync", failing_once)
        assert log.append(events(1, prefix="a")) == [True]
        with pytest.raises(LogUnavailable, match="No space left"):
            log.append(events(1, prefix="b"))
        assert log.append(events(1, prefix="c")) == [True]
        # The failed event was never acknowledged, so a retry stores it.
        assert log.append(events(1, prefix="b")) == [True]
    assert sorted(ids_in_log(tmp_path)) == ["a0", "b0", "c0"]


def test_appending_to_a_closed_log_fails_clearly(tmp_path: Path) -> None:
    log = EventLog(tmp_path).open()
    log.close()
    with pytest.raises(LogUnavailable, match="closed"):
        log.append(events(1))


def test_sorted_runs_are_merged_in_the_background_and_lookups_stay_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playnext.events import dedup

    monkeypatch.setattr(dedup, "MAX_RUNS", 3)
    seen = dedup.SeenIds(tmp_path)
    batches = [[dedup.digest(f"s{seq}-{i}") for i in range(50)] for seq in range(12)]
    for seq, digests in enumerate(batches):
        seen.add(digests)
        seen.seal(seq)
    seen.wait_for_merge()
    assert seen.runs <= 4
    everything = [d for b in batches for d in b]
    assert seen.present(everything).all()
    assert not seen.present([dedup.digest(f"new-{i}") for i in range(100)]).any()


def test_fresh_batches_are_stored_without_joining_the_seen_set(tmp_path: Path) -> None:
    """Server-made impressions are stored as they come, and only client events fill the dedup set: a client's
    retry is still caught beside them, in this run and after a restart."""
    impressions, posted = events(3, prefix="imp"), events(2, prefix="client")
    with EventLog(tmp_path, segment_max_bytes=4096) as log:
        assert log.submit_fresh(impressions).result() is None
        assert log.append(posted) == [True, True]
        assert log.append(posted[:1]) == [False]
        log.rotate()
        assert len(log._seen) == 2  # the impressions took no room in it
    with EventLog(tmp_path) as log:
        assert log.append(posted[1:]) == [False]
    assert Counter(ids_in_log(tmp_path)) == {e.event_id: 1 for e in impressions + posted}


def test_fresh_records_from_many_threads_are_written_together_and_each_once(tmp_path: Path) -> None:
    """Submitting fresh records only appends to the writer's buffer: many answers share one round, one frame and
    one fsync, and none is lost or doubled."""
    n_threads, per_thread = 8, 200
    with EventLog(tmp_path) as log:
        barrier = threading.Barrier(n_threads)
        futures = []

        def server(t: int) -> None:
            barrier.wait()
            futures.extend(log.submit_fresh(events(3, prefix=f"t{t}-{i}-")) for i in range(per_thread))

        threads = [threading.Thread(target=server, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert all(f.result(timeout=10) is None for f in futures)
        assert log.stats.events_stored == n_threads * per_thread * 3
        assert log.stats.fsyncs < n_threads * per_thread
        assert len({id(f) for f in futures}) == log.stats.groups  # one shared future per round
    assert Counter(ids_in_log(tmp_path)).most_common(1)[0][1] == 1
    assert len(ids_in_log(tmp_path)) == n_threads * per_thread * 3


def test_a_rotation_or_a_close_writes_what_was_buffered_before_it(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.submit_fresh(events(2, prefix="before-"))
        sealed = log.rotate()
        log.submit_fresh(events(2, prefix="after-"))
    assert sorted(ids_in_log(tmp_path)) == ["after-0", "after-1", "before-0", "before-1"]
    assert sealed_segments(tmp_path)[-1][0] >= sealed
    first = dict(list_segments(tmp_path))[sealed]
    assert b"before-0" in first.read_bytes() and b"after-0" not in first.read_bytes()


def test_fresh_records_hear_of_a_failed_write_and_of_a_closed_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with EventLog(tmp_path) as log:
        monkeypatch.setattr(os, "fdatasync", failing)
        with pytest.raises(LogUnavailable, match="Input/output"):
            log.submit_fresh(events(1)).result(timeout=10)
        monkeypatch.undo()
    with pytest.raises(LogUnavailable, match="closed"):
        log.submit_fresh(events(1)).result(timeout=1)


def test_fresh_records_alone_start_a_round_at_most_every_fresh_interval(tmp_path: Path) -> None:
    """Each round wakes the writer into a wait for the GIL that a busy serving thread pays for (see
    ``fresh_interval_s``), so a steady stream of exposures must not start a round per submission."""
    with EventLog(tmp_path, fresh_interval_s=0.05) as log:
        started = time.monotonic()
        futures = []
        while time.monotonic() - started < 0.3:
            futures.append(log.submit_fresh(events(1, prefix=f"x{len(futures)}-")))
            time.sleep(0.001)
        elapsed = time.monotonic() - started
        assert all(f.result(timeout=10) is None for f in futures)
        assert log.stats.events_stored == len(futures)
        assert log.stats.groups <= elapsed / 0.05 + 2


def test_a_round_written_in_short_writes_is_one_whole_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer writes a round's chunks as they came (``events.vectored``), its frame's header reckoned over
    them: a disk that takes a few bytes at a time still gets the one frame, whole and checksummed."""
    real = os.writev
    sizes: list[int] = []

    def short(fd: int, buffers: list[memoryview]) -> int:
        written = real(fd, [b"".join(bytes(b) for b in buffers)[:500]])
        sizes.append(written)
        return written

    with EventLog(tmp_path) as log:
        monkeypatch.setattr(os, "writev", short)
        lines = [encode_lines(events(3, prefix=f"x{i}-")) for i in range(20)]
        futures = [log.submit_fresh_encoded(bytearray(chunk) if i % 2 else chunk, 3) for i, chunk in enumerate(lines)]
        assert log.append(events(2, prefix="client")) == [True, True]
        assert all(f.result(timeout=10) is None for f in futures)
        monkeypatch.setattr(os, "writev", real)
    assert max(sizes) == 500 and len(sizes) > 10
    [segment] = [path for _, path in list_segments(tmp_path)]
    scan = framing.scan(segment)
    assert not scan.torn and len(scan.frames) >= 1
    assert Counter(ids_in_log(tmp_path)) == {e.event_id: 1 for i in range(20) for e in events(3, prefix=f"x{i}-")} | {
        "client0": 1, "client1": 1}  # fmt: skip


def test_a_frame_header_over_parts_is_the_header_of_their_join() -> None:
    parts = [b"one\n", bytearray(b"two\n"), b"", b"three\n"]
    joined = b"".join(parts)
    assert framing.frame_header(parts) + joined == framing.frame(joined)
    assert framing.frame_header([]) == framing.frame(b"")


@pytest.mark.parametrize("lines", [0, 1, 6, 16, 17, 400])
@pytest.mark.parametrize("width", [1, 60, 600])
def test_lines_are_checked_exactly_whichever_way_they_are_counted(lines: int, width: int) -> None:
    """``check_lines`` finds few lines one by one, counts many big ones with NumPy and the rest with ``bytes.count``:
    each way must accept exactly ``count`` newline-ended lines and refuse one more, one fewer, a stray newline
    anywhere and a missing last one, in a ``bytes`` or the ``bytearray`` a log's writer reads into."""
    good = b"".join(b'{"n":"%s"}\n' % (b"x" * width) for _ in range(lines))
    for data in (good, bytearray(good)):
        check_lines(data, lines)
        for wrong in (lines + 1, lines - 1):
            if wrong >= 0:
                with pytest.raises(ValueError, match="NDJSON lines"):
                    check_lines(data, wrong)
    if lines:
        for at in (0, len(good) // 2, len(good) - 2):  # a stray newline at the start, in the middle, near the end
            with pytest.raises(ValueError, match="NDJSON lines"):
                check_lines(good[:at] + b"\n" + good[at:], lines)
        with pytest.raises(ValueError, match="NDJSON lines"):
            check_lines(good[:-1] + b"}", lines)  # the last line not ended
        with pytest.raises(ValueError, match="NDJSON lines"):
            check_lines(good[:-1] + b"\n\n", lines)
