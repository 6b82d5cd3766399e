"""An analysis as a terminal table, JSON, and a self-contained HTML report with plots (plotly, inlined: it opens
offline and can be mailed around)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from playnext.durable import atomic_write
from playnext.experiments.analysis import Analysis


def _pct(x: float) -> str:
    return f"{x:+.2%}" if x == x else "n/a"


def as_table(a: Analysis) -> Table:
    table = Table(title=f"{a.experiment}: {a.verdict}" + (f" {a.variant}" if a.variant else ""))
    for column in ("variant", "metric", "role", "control", "treatment", "effect", "interval", "CUPED", "verdict"):
        table.add_column(column, justify="left" if column in {"variant", "metric", "role"} else "right")
    for r in a.results:
        verdict = "better" if r.better else "worse" if r.better is False else "not significant"
        if r.role == "guardrail":
            verdict = ("beyond margin" if r.beyond_margin else "within margin" if r.non_inferior
                       else "not shown") + f" ({r.margin:.0%})"  # fmt: skip
        table.add_row(
            r.variant, r.metric, r.role, f"{r.control:.4g}", f"{r.treatment:.4g}", _pct(r.relative),
            f"[{_pct(r.ci_relative[0])}, {_pct(r.ci_relative[1])}]", f"-{r.variance_reduction:.0%} var", verdict,
        )  # fmt: skip
    return table


def as_json(a: Analysis) -> str:
    return json.dumps(a.to_json(), indent=2, sort_keys=True, default=str, allow_nan=False)


def _effects_figure(a: Analysis) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for variant in sorted({r.variant for r in a.results}):
        rows = [r for r in a.results if r.variant == variant]
        fig.add_trace(go.Scatter(
            x=[100 * r.relative for r in rows], y=[f"{r.metric} ({r.role})" for r in rows], mode="markers",
            name=variant, marker={"size": 10},
            error_x={"type": "data", "symmetric": False,
                     "array": [100 * (r.ci_relative[1] - r.relative) for r in rows],
                     "arrayminus": [100 * (r.relative - r.ci_relative[0]) for r in rows]},
        ))  # fmt: skip
    fig.add_vline(x=0, line_dash="dash")
    fig.update_layout(title="Relative effect against control, with repeated confidence intervals",
                      xaxis_title="% change", height=120 + 40 * max(1, len(a.results)))  # fmt: skip
    return fig


def _looks_figure(looks: list[dict[str, Any]], title: str, x_key: str = "fraction") -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    names = sorted({name for look in looks for name in look.get("effects", {})})
    for name in names:
        points = [(look[x_key], look["effects"][name]) for look in looks
                  if None not in look.get("effects", {}).get(name, [None])]  # fmt: skip
        fig.add_trace(go.Scatter(
            x=[x for x, _ in points], y=[100 * e[0] for _, e in points], mode="lines+markers", name=name,
            error_y={"type": "data", "symmetric": False, "array": [100 * (e[2] - e[0]) for _, e in points],
                     "arrayminus": [100 * (e[0] - e[1]) for _, e in points]},
        ))  # fmt: skip
    fig.add_hline(y=0, line_dash="dash")
    fig.update_layout(title=title, xaxis_title=x_key.replace("_", " "), yaxis_title="% change")
    return fig


def write_html(a: Analysis, path: Path, ramp: list[dict[str, Any]] | None = None) -> Path:
    figures = [_effects_figure(a)]
    if len(a.looks) > 1:
        figures.append(_looks_figure(a.looks, "Effects at each look"))
    if ramp:
        figures.append(_looks_figure(ramp, "Effects over the ramp", x_key="share"))
    parts = [f.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False)
             for i, f in enumerate(figures)]  # fmt: skip
    srm = a.sample_ratio
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(a.experiment)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} td,th{{padding:2px 8px;text-align:right}}</style>
</head><body><h1>{html.escape(a.experiment)}: {html.escape(a.verdict)}{" " + html.escape(a.variant or "")}</h1>
<p>As of {html.escape(a.as_of)}; look {a.look}{f", {a.fraction:.0%} of the planned sample size" if a.fraction else ""}.
Listeners: {html.escape(", ".join(f"{k} {v:,}" for k, v in a.listeners.items()))}.
Sample ratio: chi-square p = {srm["p_value"]:.3g}{" <b>MISMATCH</b>" if srm["mismatch"] else ""}.</p>
<ul>{"".join(f"<li>{html.escape(r)}</li>" for r in a.reasons)}</ul>
{"".join(parts)}
<h2>Every metric</h2><pre>{html.escape(as_json(a))}</pre></body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, body.encode())
    return path
