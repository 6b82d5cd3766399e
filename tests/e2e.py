"""Driving ``playnext`` as a user would: real subprocesses, real HTTP on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

from playnext.events.lake_events import events_table


def env_for(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYNEXT_")}
    env["PLAYNEXT_DATA_DIR"] = str(data_dir)
    env.update({f"PLAYNEXT_{k.upper()}": v for k, v in settings.items()})
    return env


def playnext(*args: str, env: dict[str, str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "playnext.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"playnext {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def run_bench(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """``bench/<script>`` with ``args``, from the repository's root, as its README command runs it."""
    return subprocess.run([sys.executable, f"bench/{script}", *args], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_sockets(port: int) -> int:
    """Sockets listening on ``port`` on this machine: one per started worker of ``playnext serve --workers``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


class Server:
    """``playnext serve [args]`` in a subprocess, ready when /healthz answers (with ``--workers N``, when all N
    listen: each starts listening once it has loaded the model)."""

    def __init__(self, env: dict[str, str], *args: str, timeout: float = 30) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "playnext.cli", "serve", "--port", str(self.port), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")
            try:
                if (
                    httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200
                    and listening_sockets(self.port) >= workers
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server did not become ready in {timeout:.0f} s")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


def lake_event_ids(lake_dir: Path) -> list[str]:
    paths = [str(p) for p in events_table(lake_dir).file_paths()]
    if not paths:
        return []
    return [r[0] for r in duckdb.sql(f"SELECT event_id FROM read_parquet({paths})").fetchall()]
