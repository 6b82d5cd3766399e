"""Stage ③ as an operator drives it: import a dataset, train, list, serve, promote, roll back, evaluate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e import Server, env_for, playnext

pytestmark = pytest.mark.slow


def _served(server: Server, key: str, want: str | None, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()
        got = body["served"]["id"] if body["served"] else None
        if got == want or time.monotonic() > deadline:
            assert got == want, body
            return body
        time.sleep(0.2)


def test_train_promote_rollback_and_eval_through_the_cli_and_a_running_server(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data", models__reload_interval_s="0.2", compact_interval_s="0")
    assert "100,000 ratings" in playnext("datasets", "import", "movielens-100k", env=env).stdout
    first = playnext("train", "--holdout", "0.2", "--generators", "popularity,ease", "--no-ranker", env=env)
    assert "recommender" in first.stdout and "ndcg@20" in first.stdout
    a = first.stdout.split("published model version ")[1].split()[0].rstrip(";")
    second = playnext("train", "--generators", "popularity,als", "--no-ranker", env=env)
    b = second.stdout.split("published model version ")[1].split()[0].rstrip(";")
    listing = playnext("models", "list", env=env).stdout
    assert a in listing and b in listing

    key = playnext("keys", "create", "--scope", "read", "--quiet", env=env).stdout.strip()
    server = Server(env)
    try:
        assert _served(server, key, None)["pointer"] is None
        playnext("models", "promote", a, env=env)
        body = _served(server, key, a)
        assert body["served"]["cutoff"] and body["served"]["metrics"][0]["name"] == "recommender"
        playnext("models", "promote", b, env=env)
        _served(server, key, b)
        assert f"serving {a}" in playnext("models", "rollback", env=env).stdout
        _served(server, key, a)
        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["model"] == {"version": a, "error": None}
    finally:
        server.stop()

    compared = playnext("eval", a, env=env).stdout
    assert a in compared and "ndcg" in compared
    fresh = json.loads(playnext("eval", "--holdout", "0.2", "--generators", "popularity,ease", "--no-ranker",
                                "--format", "json", env=env).stdout)  # fmt: skip
    assert [r["name"] for r in fresh] == ["recommender", "popularity", "ease"]
    assert 0 < fresh[0]["metrics"]["all"]["ndcg@20"] < 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "promote", "nope"], "no model version 'nope'"),
        (["models", "rollback"], "no earlier version"),
        (["train", "--holdout", "2"], "between 0 and 1"),
        (["train", "--generators", "bogus"], "unknown generator 'bogus'"),
        (["train", "--reward", "bogus"], "unknown reward 'bogus'"),
        (["train", "--cutoff", "yesterday"], "not an ISO 8601 time"),
        (["datasets", "import", "nope"], "unknown dataset 'nope'"),
        (["train"], "has no events"),
    ],
)
def test_bad_model_commands_fail_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    result = playnext(*args, env=env_for(tmp_path / "data"), check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_train_with_spark_als_from_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    env = env_for(tmp_path / "data", models__spark_master="local[2]")
    playnext("datasets", "import", "movielens-100k", env=env)
    result = playnext("train", "--holdout", "0.2", "--engine", "spark", "--generators", "popularity,als",
                      "--no-ranker", env=env, timeout=300)  # fmt: skip
    assert "published model version" in result.stdout and "│ als" in result.stdout
    assert "fit_als" in result.stdout


def test_bad_model_settings_fail_before_training(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data", models__params='{"als": {"factors": "many"}}')
    playnext("datasets", "import", "movielens-100k", env=env)
    result = playnext("train", "--generators", "als", env=env, check=False)
    assert result.returncode == 2 and "'factors' of generator 'als' must be int" in result.stderr
    assert "Traceback" not in result.stderr
    fresh = playnext("eval", env=env, check=False)
    assert fresh.returncode == 2 and "no model versions yet" in fresh.stderr
