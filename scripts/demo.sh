#!/usr/bin/env bash
# One command: install everything and run the demo end to end on ./playnext-data (or $PLAYNEXT_DATA_DIR):
# simulate a world, serve the collector, ingest live events over HTTP and a file through the CLI, compact the
# log into the lake, build the feature tables, query them, train and serve a model version, run an A/B test on it
# with simulated listeners, and evaluate the models on MovieLens-100K. Set DEMO_USERS / DEMO_TRACKS / DEMO_DAYS
# for a bigger world, and
# DEMO_KEEP_SERVING=1 to leave the server running at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

export PLAYNEXT_DATA_DIR="${PLAYNEXT_DATA_DIR:-$root/playnext-data}"
port="${DEMO_PORT:-8000}"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. simulate listeners with hidden tastes (history straight to the lake)"
playnext simulate --users "${DEMO_USERS:-2000}" --tracks "${DEMO_TRACKS:-20000}" --days "${DEMO_DAYS:-28}" --replace

say "2. an ingest key (only its hash is stored)"
key="$(playnext keys create --scope ingest --name demo --quiet)"
echo "created a key: ${key:0:18}…"

say "3. serve the collector on 127.0.0.1:$port"
playnext serve --port "$port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/readyz"; echo

say "4. live events over HTTP: the simulated listeners react to a served list (a good event, a duplicate, a bad one)"
python - "$port" "$key" <<'PY'
import datetime as dt, sys, httpx, msgspec
from playnext.config import Settings
from playnext.synth.respond import Listeners
from playnext.synth.world import load_world
port, key = sys.argv[1], sys.argv[2]
world = load_world(Settings().synth_dir)
listeners = Listeners(world, seed=1)
now = dt.datetime.now(dt.UTC).replace(microsecond=0)
events = listeners.respond_events("u1", [f"t{i}" for i in range(10)], request_id="demo-req-1", surface="home", at=now)
body = [msgspec.to_builtins(e) for e in events]
body += [body[0], {"type": "play", "event_id": "bad-1", "user_id": "u1\u0000", "ts": "yesterday"}]
answer = httpx.post(f"http://127.0.0.1:{port}/v1/events", json=body, headers={"Authorization": f"Bearer {key}"})
report = answer.json()
print(f"HTTP {answer.status_code}: {report['accepted']} accepted, {report['duplicates']} duplicate, {report['rejected']} rejected")
for r in report["rejections"]:
    print(f"  rejected #{r['index']}: {r['reason']}")
PY

say "5. stop the server; import a file of events through the CLI (bad lines are named, good ones kept)"
kill "$server"; wait "$server" 2>/dev/null || true
trap - EXIT
file="$(mktemp --suffix=.ndjson)"
cat > "$file" <<NDJSON
{"type":"play","event_id":"file-1","user_id":"u2","ts":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","item_id":"t5","item_type":"track","ms_played":200000,"reason_end":"trackdone"}
{"type":"save","event_id":"file-2","user_id":"u2","ts":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","item_id":"t5","item_type":"track"}
{"type":"skip","event_id":"file-3","user_id":"u2","ts":"not a time","item_id":"t6","item_type":"track"}
NDJSON
playnext events import "$file" || echo "(exit code $?: one line was rejected, as intended)"
rm -f "$file"

say "6. compact the log into the lake (Parquet by event date)"
playnext events compact

say "7. query the lake and the catalog"
playnext sql "SELECT type, count(*) AS events, count(DISTINCT user_id) AS listeners FROM events GROUP BY 1 ORDER BY 2 DESC"
playnext sql "SELECT a.name AS artist, count(*) AS plays FROM events e JOIN tracks t ON e.item_id = t.id JOIN artists a ON t.artist_id = a.id WHERE e.type = 'play' GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
playnext sql "SELECT surface, position, item_id FROM events WHERE type = 'impression' ORDER BY position LIMIT 5"

say "8. feature tables (stage ②) on DuckDB; run it again and the incremental tables are left unchanged"
playnext pipeline run
playnext pipeline run --tables sessions,user_item_affinity,outcomes
playnext sql "SELECT user_id, item_id, round(affinity, 2) AS affinity, plays, skips, saves FROM user_item_affinity ORDER BY affinity DESC LIMIT 5"
playnext sql "SELECT content_type, count(*) AS sessions, round(avg(items), 1) AS avg_items, round(avg(skip_rate), 2) AS skip_rate FROM sessions GROUP BY 1 ORDER BY 2 DESC"
playnext sql "SELECT c.item_id, t1.name AS track, t2.name AS neighbour, c.count, round(c.pmi, 2) AS pmi FROM item_cooccurrence c JOIN tracks t1 ON c.item_id = t1.id JOIN tracks t2 ON c.neighbour_id = t2.id WHERE c.rank = 1 ORDER BY c.count DESC LIMIT 5"
playnext sql "SELECT streamed, saved, skipped, count(*) AS impressions FROM outcomes GROUP BY ALL ORDER BY 4 DESC"

say "9. train the models (stage ③) on all but the newest 10% of events, evaluate on that 10%, publish and serve"
# SASRec is cut short here to keep the demo quick; the defaults train it longer.
PLAYNEXT_MODELS__PARAMS='{"sasrec": {"epochs": 2, "min_steps": 60}}' playnext train --holdout 0.1 --promote
playnext models list
playnext rewards list
playnext batch all    # Discover Weekly, Daily Mix and Home shelves for every listener, into the online store

say "10. the server answers with the promoted version: /v1/models, the surfaces (impressions are logged), the live session"
read_key="$(playnext keys create --scope read --name demo-read --quiet)"
playnext serve --port "$port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
python - "$port" "$read_key" "$key" <<'PY'
import datetime as dt, sys, httpx
port, key, ingest_key = sys.argv[1], sys.argv[2], sys.argv[3]
body = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()
served = body["served"]
ndcg = served["metrics"][0]["metrics"]["all"]["ndcg@20"]
print(f"serving {served['id']} (trained before {served['cutoff'][:16]}): NDCG@20 {ndcg:.4f} on the holdout")
auth = {"Authorization": f"Bearer {key}"}
now = dt.datetime.now(dt.UTC)
plays = [{"type": "play", "event_id": f"demo-live-{t}", "user_id": "u1", "item_id": t, "item_type": "track",
          "ts": (now - dt.timedelta(minutes=m)).isoformat(), "ms_played": 200_000} for t, m in [("t11", 8), ("t12", 4)]]
httpx.post(f"http://127.0.0.1:{port}/v1/events", json=plays, headers={"Authorization": f"Bearer {ingest_key}"})
for title, path in [("Discover Weekly for u1", "/v1/users/u1/discover-weekly?n=5"),
                    ("next after t10 for u1, whose live session holds t11 and t12", "/v1/users/u1/next?track=t10&n=3"),
                    ("Blend of u1 and u2", "/v1/blend?users=u1,u2&n=4"),
                    ("search 'kalo' for u1", "/v1/search?q=kalo&user=u1&n=3"),
                    ("a new listener's Discover Weekly", "/v1/users/newcomer/discover-weekly?n=3&country=SE")]:
    body = httpx.get(f"http://127.0.0.1:{port}{path}", headers=auth).json()
    extra = f" (taste match {body['taste_match']})" if "taste_match" in body else ""
    print(f"{title}{extra}, source={body['source']}, fallback={body['fallback']}:")
    for item in body["items"]:
        print(f"  {item['position']}. {item['item_id']}: {item['reason']}")
home = httpx.get(f"http://127.0.0.1:{port}/v1/users/u1/home?size=3", headers=auth).json()
print(f"Home for u1 (source={home['source']}): " + "; ".join(
    f"{s['title']} (p={s['propensity']}): {', '.join(i['item_id'] for i in s['items'])}" for s in home["shelves"]))
PY
kill "$server"; wait "$server" 2>/dev/null || true
trap - EXIT

say "11. an A/B test: one track per artist in Discover Weekly; simulated listeners react to what their variant shows"
export PLAYNEXT_EXPERIMENTS='{"dw-cap": {"variants": {"control": {"share": 0.5}, "one-per-artist": {"share": 0.5, "params": {"discover-weekly": {"per_artist": 1}}}}, "success_metrics": ["stream_rate"], "guardrails": [{"metric": "skip_rate", "margin": 0.05}], "planned_sample_size": 1000}}'
both_key="$(playnext keys create --scope read --scope ingest --rate 0 --name demo-ab --quiet)"
playnext serve --port "$port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
python - "$port" "$both_key" <<'PY'
import datetime as dt, sys, httpx, msgspec
from playnext.config import Settings
from playnext.events.schema import Impression
from playnext.synth.respond import Listeners
from playnext.synth.world import load_world
port, key = sys.argv[1], sys.argv[2]
listeners = Listeners(load_world(Settings().synth_dir), seed=2)
with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as client:
    for i in range(600):
        body = client.get(f"/v1/users/u{i}/discover-weekly").json()
        events = listeners.respond_events(f"u{i}", [it["item_id"] for it in body["items"]], request_id=f"ab-{i}",
                                          surface="discover-weekly", at=dt.datetime.now(dt.UTC))
        home = client.get(f"/v1/users/u{i}/home").json()
        cards = [card["item_id"] for shelf in home["shelves"] for card in shelf["items"]]
        events += listeners.respond_events(f"u{i}", cards, request_id=f"home-{i}", surface="home",
                                           at=dt.datetime.now(dt.UTC))
        client.post("/v1/events", content=msgspec.json.encode([e for e in events if not isinstance(e, Impression)]))
print("600 listeners served Discover Weekly by their variant and a Home page; their reactions posted")
PY
kill "$server"; wait "$server" 2>/dev/null || true
trap - EXIT
playnext events compact
# The simulated listeners play each list through, up to a couple of hours ahead: analyse as of tomorrow.
tomorrow="$(date -u -d tomorrow +%Y-%m-%dT%H:%M:%S)"
playnext experiment analyze dw-cap --as-of "$tomorrow"
playnext experiment list
playnext experiment plan --effect 0.01 --sd 0.15 --looks 3
playnext experiment ope --target uniform --as-of "$tomorrow"
unset PLAYNEXT_EXPERIMENTS

say "12. real data: MovieLens-100K (from the recbole wheel), temporal split, full ranking, generators side by side"
PLAYNEXT_DATA_DIR="$PLAYNEXT_DATA_DIR/movielens-100k" playnext datasets import movielens-100k --replace
PLAYNEXT_DATA_DIR="$PLAYNEXT_DATA_DIR/movielens-100k" playnext eval --holdout 0.2 \
  --generators popularity,trending,als,ease,rp3beta,cooccurrence

if [ "${DEMO_KEEP_SERVING:-0}" = "1" ]; then
  say "serving on http://127.0.0.1:$port (OpenAPI at /openapi.json); Ctrl-C to stop"
  exec playnext serve --port "$port"
fi
say "done: data in $PLAYNEXT_DATA_DIR; 'playnext serve' to start the collector again"
