"""Render a report dict as Markdown tables (report.md) and as the short headline table `dynmix demo` prints."""

from __future__ import annotations

import math
from typing import Any

# Sections whose best value is the smallest; everything else is better when larger.
LOWER_IS_BETTER = {"pair_vol", "qlike", "mse", "volatility", "vol", "ann_vol", "ann_vol_long_only", "max_drawdown",
                   "turnover", "cvar95",
                   "maxDD", "turn"}
# columns no end of which is "better"
NO_BEST = {"t_stat", "p", "p_vs_1N", "p_memmel", "sharpe_lo", "sharpe_hi", "dm_stat", "dm_p", "in_mcs90",
           "dm_stat_dynmix_har", "dm_p_dynmix_har"}
LOWER_PREFIXES = ("nll", "rel_mse", "pair_vol_")  # nll_train, rel_mse_h1, ..., pair_vol_stressed
TITLES = {
    "sector": "Sector recovery (test-period vectors, leave-one-company-out)",
    "similarity": "Similarity -> future (train-period similarity vs test-period return correlation)",
    "hedging": "Hedging with the least similar company (test-period annualised volatility)",
    "collapse": "Collapse (test-period embeddings, per view)",
    "regimes": "Per-date scores by market-volatility regime",
}
PROTOCOL = (
    "Protocol: dates up to `train_end` are the train period and later dates the test period; the encoders "
    "were fitted on the train period only. Sector recovery uses each company's mean embedding over the test "
    "period and predicts its sector from the other companies (leave-one-company-out kNN with cosine distance "
    "and a standardised logistic regression, whose macro-F1 is shown; KMeans ARI/NMI with one cluster per "
    "sector); companies of 'Unknown' or single-company sectors are left out. Similarity and hedging use "
    "train-period vectors (cosine similarity) and are scored on test-period daily returns: Spearman over "
    "company pairs against realised correlation, precision@k of same-sector neighbours, and the annualised "
    "volatility of each company paired equally with its least similar company. Baselines (PCA loadings, "
    "correlation rows, random vectors, and the Pearson correlation itself for similarity) are computed from "
    "the same period's returns only. The explicit view contains the sector one-hot, so its sector scores are "
    "an upper reference, not a result. Per-date scores by regime: each test date is calm, mid or stressed by "
    "its market volatility against the training dates' terciles; that date's embeddings alone give the "
    "similarity, scored against the return correlation realised over the regime's test dates (Spearman), "
    "precision@k of same-sector neighbours, and the next-day volatility of the pair with the least similar "
    "company; `_per_date` pools the three regimes."
)


def clean_json(obj: Any) -> Any:
    """NaN/inf -> None, so report.json stays valid JSON."""
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _best(rows: dict[str, dict[str, Any]], col: str) -> float | None:
    if col in NO_BEST:
        return None
    vals = [r.get(col) for r in rows.values() if isinstance(r, dict)]
    nums = [float(v) for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(nums) < 2:
        return None
    return min(nums) if col in LOWER_IS_BETTER or col.startswith(LOWER_PREFIXES) else max(nums)


def markdown_table(rows: dict[str, dict[str, Any]], first: str = "method") -> str:
    """{row: {column: value}} -> a Markdown table, best value per column in bold."""
    cols: list[str] = []
    for r in rows.values():
        for c in r if isinstance(r, dict) else ():
            if c not in cols:
                cols.append(c)
    best = {c: _best(rows, c) for c in cols}
    lines = [f"| {first} | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, r in rows.items():
        cells = []
        for c in cols:
            v = r.get(c) if isinstance(r, dict) else None
            cell = _fmt(v)
            if best[c] is not None and isinstance(v, int | float) and float(v) == best[c]:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, dict) for v in value.values()) and all(
        not isinstance(x, dict | list) for v in value.values() for x in v.values())


# report["planning"]'s keys that are not strategies
PLANNING_META = ("vs_equal_weight", "costs_bps", "by_cost", "ms_per_plan", "skill", "impact")


def planning_rows(section: Any) -> dict[str, dict[str, Any]]:
    """{strategy: metrics} of report["planning"] at its headline cost, with `p_vs_1N` (the bootstrap p-value of
    the Sharpe difference against equal weight) merged in; {} when there is none.
    """
    if not isinstance(section, dict):
        return {}
    vs = section.get("vs_equal_weight") or {}
    return {str(k): {**v, **({"p_vs_1N": vs[k].get("p")} if isinstance(vs.get(k), dict) else {})}
            for k, v in section.items() if k not in PLANNING_META and isinstance(v, dict)}


def planning_markdown(section: Any) -> list[str]:
    """The planning section: the headline table, one table per cost level, ms per plan."""
    rows = planning_rows(section)
    if not rows:
        return []
    cost = section.get("costs_bps")
    out = [f"## Planning (walk-forward, {cost:g} bps per unit of turnover, net; Sharpe 95 % stationary-bootstrap "
           "interval; p_vs_1N: bootstrap p-value of the Sharpe difference against equal weight)"
           if isinstance(cost, int | float) else "## Planning", "", markdown_table(rows, "strategy"), ""]
    for level, table in (section.get("by_cost") or {}).items():
        if _is_table(table):
            out += [f"### Planning at {level} bps", "", markdown_table(table, "strategy"), ""]
    if _is_table(skill := section.get("skill")):
        out += ["### Skill of μ̂ on the training period (IC: Spearman, H-day returns)", "",
                markdown_table(skill, "forecast"), ""]
    if ms := section.get("ms_per_plan"):
        out += ["ms per plan: " + ", ".join(f"{k} {v:.1f}" for k, v in ms.items() if isinstance(v, int | float)), ""]
    return out


VOLATILITY_META = ("dm", "dm_dynmix_har", "mcs")  # a horizon's keys that are not methods


def volatility_rows(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One horizon's section as display rows {method: {qlike, mse, dm_stat, dm_p, dm_stat_dynmix_har,
    dm_p_dynmix_har, in_mcs90}} (the shape report.md, the CLI and the dashboard render).
    """
    dm, dm_har, mcs = section.get("dm", {}), section.get("dm_dynmix_har", {}), section.get("mcs")
    rows: dict[str, dict[str, Any]] = {}
    for m, v in section.items():
        if m in VOLATILITY_META or not isinstance(v, dict):
            continue
        row = dict(v)
        if m in dm:
            row["dm_stat"], row["dm_p"] = dm[m]["stat"], dm[m]["p"]
        if m in dm_har:
            row["dm_stat_dynmix_har"], row["dm_p_dynmix_har"] = dm_har[m]["stat"], dm_har[m]["p"]
        if isinstance(mcs, list):
            row["in_mcs90"] = m in mcs
        rows[m] = row
    return rows


def volatility_verdict(section: dict[str, Any], horizon: str) -> str:
    """One horizon's Diebold–Mariano and MCS results in words, for the world model (`dynmix`)."""
    dm = {m: d for m, d in (section.get("dm") or {}).items() if isinstance(d, dict)}
    ours = section.get("dynmix")
    if not dm or not isinstance(ours, dict):
        return f"At {horizon} no significance test was possible (see notes)."
    groups: dict[str, list[str]] = {"worse": [], "better": [], "tied": []}
    for m, d in dm.items():
        sig = isinstance(d.get("p"), int | float) and d["p"] < 0.05
        groups["tied" if not sig else "worse" if d["stat"] > 0 else "better"].append(m)
    words = [f"significantly worse than {', '.join(groups['worse'])}" if groups["worse"] else "",
             f"significantly better than {', '.join(groups['better'])}" if groups["better"] else "",
             f"not told apart from {', '.join(groups['tied'])}" if groups["tied"] else ""]
    kept = section.get("mcs")
    mcs = f" The 90 % Model Confidence Set keeps {', '.join(kept)}." if isinstance(kept, list) and kept else ""
    return (f"At {horizon} the world model (QLIKE {ours.get('qlike', float('nan')):.3f}) is "
            + "; ".join(w for w in words if w) + " (Diebold–Mariano, 5 % level)." + mcs)


SURPRISE_META = ("increment",)  # report["forecast"]["surprise"]'s keys that are not correlation rows


def surprise_verdict(inc: dict[str, Any]) -> str:
    """The surprise increment in words: whether the JEPA surprise index improves a HAR forecast of market variance."""
    vals = [v for k in ("qlike_har", "qlike_har_surprise", "p") if isinstance(v := inc.get(k), int | float)]
    if len(vals) < 3:
        return "The surprise increment could not be measured (see notes)."
    q0, q1, p = vals
    helps = q1 < q0 and p < 0.05
    return ("The surprise index adds to HAR: " if helps else "The surprise index adds nothing a HAR forecast of "
            "market variance does not already know: ") + (
        f"out-of-sample QLIKE {q1:.3f} with it against {q0:.3f} without, its training-period coefficient's HAC "
        f"t-statistic {inc.get('t_stat', float('nan')):.2f} (p = {p:.3f}).")


def forecast_markdown(section: Any, level: str = "## ") -> list[str]:
    """The forecast section: volatility by horizon (DM and MCS merged into the rows), GMV, density, latent,
    surprise with its increment in words.
    """
    if not isinstance(section, dict):
        return []
    out: list[str] = []
    vol = section.get("volatility")
    for h, what in (("h1", "next day's squared return"), ("h5", "5-day realised"), ("h22", "22-day realised")):
        table = vol.get(h) if isinstance(vol, dict) else None
        if isinstance(table, dict) and table:
            out += [f"{level}Volatility, {what}, test period (lower is better; dm: Diebold–Mariano of dynmix against "
                    "the row on per-date QLIKE, > 0: dynmix loses more; in_mcs90: in the 90 % Model Confidence Set)",
                    "", markdown_table(volatility_rows(table)), "", volatility_verdict(table, f"h = {h[1:]}"), ""]
    for key, title in (("gmv", "Global minimum variance, weekly, test period: realised annualised volatility "
                               "(lower is better)"),
                       ("density", "Next-day NLL per company (lower is better)"),
                       ("latent", "Latent forecast error, relative MSE (lower is better)")):
        table = section.get(key)
        if isinstance(table, dict) and _is_table(table):
            out += [f"{level}{title}", "", markdown_table(table, "covariance" if key == "gmv" else "method"), ""]
    surprise = section.get("surprise")
    if isinstance(surprise, dict) and surprise:
        corr = {k: v for k, v in surprise.items() if k not in SURPRISE_META}
        if _is_table(corr):
            out += [f"{level}JEPA surprise index against next-week market volatility (test period)", "",
                    markdown_table(corr), ""]
        if isinstance(inc := surprise.get("increment"), dict):
            out += [f"{level}Surprise increment (HAR of next-week market variance, with and without the index)", "",
                    markdown_table({"HAR": {"qlike": inc.get("qlike_har")},
                                    "HAR + surprise": {"qlike": inc.get("qlike_har_surprise"),
                                                       "t_stat": inc.get("t_stat"), "p": inc.get("p")}}, "model"),
                    "", surprise_verdict(inc), ""]
    return out


def render_markdown(report: dict[str, Any]) -> str:
    """Every table-shaped section of the report (ours and those other steps merged in) as Markdown."""
    out = ["# Evaluation report", ""]
    split = report.get("split") or {}
    if split:
        out += ["Split: " + ", ".join(f"{k} = {v}" for k, v in split.items() if not isinstance(v, dict | list)), ""]
    out += [PROTOCOL, ""]
    for key, value in report.items():
        if key in ("split", "notes"):
            continue
        first = "view" if key == "collapse" else "method"
        if key == "planning" and "costs_bps" in (value if isinstance(value, dict) else {}):
            out += planning_markdown(value)
        elif key == "forecast" and isinstance(value, dict) and not _is_table(value):
            out += ["## Forecasts", "", *forecast_markdown(value, level="### ")]
        elif _is_table(value):
            out += [f"## {TITLES.get(key, key.capitalize())}", "", markdown_table(value, first), ""]
        elif key in TITLES and not value:
            out += [f"## {TITLES[key]}", "", "_not available (see notes)_", ""]
        elif isinstance(value, dict):
            for sub, table in value.items():
                if _is_table(table):
                    title = TITLES[key] if key in TITLES else f"{key.capitalize()}: {sub}"
                    out += [f"## {title}", "", markdown_table(table, first), ""]
    if key_notes := report.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in key_notes] + [""]
    return "\n".join(out)


def headline_table(report: dict[str, Any]) -> str:
    """Plain-text table per method: kNN accuracy, ARI, Spearman -> future, pair volatility."""
    sector, sim, hedge = report.get("sector") or {}, report.get("similarity") or {}, report.get("hedging") or {}
    methods = list(dict.fromkeys([*sector, *sim, *hedge]))
    header = ("method", "kNN acc", "ARI", "Spearman->future", "pair vol")
    rows = [header] + [(
        m,
        _fmt((sector.get(m) or {}).get("knn_accuracy")),
        _fmt((sector.get(m) or {}).get("ari")),
        _fmt((sim.get(m) or {}).get("spearman_future_corr")),
        _fmt((hedge.get(m) or {}).get("pair_vol")),
    ) for m in methods]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
