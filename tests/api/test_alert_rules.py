"""The shipped alert rules parse and name only metrics that the service exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from playnext.api.app import create_app
from playnext.config import Settings

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def test_every_alert_names_exported_metrics(settings: Settings) -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {"PlaynextHighErrorRate", "PlaynextLatencySLOBurn", "PlaynextIngestBacklog",
                                           "PlaynextStaleModel", "PlaynextSRMDetected"}  # fmt: skip
    with TestClient(create_app(settings)) as client:
        client.get("/healthz")
        exported = client.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\w+) (\w+)", exported, re.M))
    names = {name for name, _ in families}
    names |= {f"{name}_{suffix}" for name, kind in families if kind == "histogram" for suffix in ("bucket", "count")}
    names |= {f"{name}_total" for name, kind in families if kind == "counter"}
    for rule in rules:
        used = set(re.findall(r"\b(playnext_\w+)", rule["expr"]))
        assert used and used <= names, (rule["alert"], used - names)
        assert rule["annotations"]["runbook"] and rule["labels"]["severity"] in ("page", "ticket")
