"""`evaluate_run`: score a run's embeddings out of sample against baselines; merge them into the run's report.

Protocol: the run's split divides dates into train (<= train_end) and test (later). Similarity and
hedging use vectors from train-period data scored on test-period returns; sector recovery uses test-period
vectors only (the encoders never trained on those dates), probed leave-one-company-out.
Shapes: N companies, D features, T dates.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from dynmix.data.schema import UNKNOWN_SECTOR
from dynmix.errors import DynMIXError
from dynmix.evaluation.baselines import baseline_vectors, pearson_similarity, period, returns_panel
from dynmix.evaluation.collapse import collapse_metrics
from dynmix.evaluation.probes import LOO_MAX, probe_set, sector_metrics
from dynmix.evaluation.regimes import regime_report
from dynmix.evaluation.run_inputs import RunInputs, embedding_rows, load_run_inputs, mean_embeddings
from dynmix.evaluation.similarity import MIN_OBS, cosine_matrix, similarity_metrics
from dynmix.runs.report_md import headline_table, render_markdown
from dynmix.runs.rundir import RunDir
from dynmix.workspace import Workspace

VIEWS = ("implicit", "explicit", "fused")
SPLIT_KEYS = ("train_start", "train_end", "test_start", "test_end")
Periods = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # ({ticker: (D,)} train, {ticker: (D,)} test)


def _periods(run: RunInputs, path: Path, view: str) -> Periods:
    return (mean_embeddings(path, view, run.train_start, run.train_end),
            mean_embeddings(path, view, run.test_start, run.test_end))


def _run_methods(run: RunInputs, compare: RunDir | None, notes: list[str]
                 ) -> tuple[dict[str, Periods], dict[str, Path]]:
    """Per-period mean embeddings of the run's views (and the compared run's implicit view)."""
    methods: dict[str, Periods] = {}
    sources: dict[str, Path] = {}  # collapse key -> embeddings file, for the implicit-type sources
    for view in VIEWS:
        if view in run.views:
            methods[f"dynmix_{view}"] = _periods(run, run.embeddings_path, view)
            sources[view] = run.embeddings_path
        else:
            notes.append(f"view {view!r} absent from the run's embeddings: dynmix_{view} not scored")
    if compare is not None:
        path = compare.checked_embeddings()
        other = compare.read_split()
        if any(str(other.get(k)) != str(run.split.get(k)) for k in SPLIT_KEYS):
            notes.append(f"{compare.name} has a different split.json; scored on {run.run_id}'s split")
        name = f"{compare.name}_implicit"
        methods[name] = _periods(run, path, "implicit")
        sources[name] = path
    return methods, sources


def _universe(run: RunInputs, methods: dict[str, Periods], notes: list[str]) -> list[str]:
    """Equities with train- and test-period vectors for every method and enough returns in both periods."""
    names = set(run.equities)
    for train, test in methods.values():
        names &= set(train) & set(test)
    ret = returns_panel(run.prices, sorted(names))
    tr, te = period(ret, run.train_start, run.train_end), period(ret, run.test_start, run.test_end)
    kept = [t for t in sorted(names) if tr[t].count() >= MIN_OBS and te[t].count() >= MIN_OBS]
    if len(kept) < len(run.equities):
        notes.append(f"{len(run.equities) - len(kept)} equity ticker(s) left out: no embedding in both periods "
                     f"or fewer than {MIN_OBS} daily returns in one of them")
    if len(kept) < 3:
        raise DynMIXError(f"run {run.run_id}: only {len(kept)} equity ticker(s) have embeddings and >= {MIN_OBS} "
                          "returns in both periods of split.json; expected at least 3 to evaluate")
    return kept


BASELINES = ("pca", "correlation", "random", "pearson")  # scored from the returns alone: the same for every run


def evaluate_run(ws: Workspace, run_dir: str | Path | RunDir, compare: str | Path | RunDir | None = None, *,
                 shared: dict[Any, Any] | None = None) -> dict[str, Any]:
    """Evaluate the run in `run_dir` (optionally against another run's implicit view); write the reports.

    `shared`: a dict kept by the caller across the runs of one workspace (`dynmix compare`): the baselines' scores
    (`BASELINES`, and train-period Pearson by regime), which depend only on the returns, the companies, the split
    and the eval config, are computed for the first run and reused by every later run with the same inputs.
    """
    run = load_run_inputs(ws, RunDir.of(run_dir))
    cfg, notes = run.eval_cfg, list(run.notes)
    methods, sources = _run_methods(run, RunDir.of(compare) if compare is not None else None, notes)
    tickers = _universe(run, methods, notes)
    ret = returns_panel(run.prices, tickers)
    train_ret, test_ret = period(ret, run.train_start, run.train_end), period(ret, run.test_start, run.test_end)
    vectors = {m: (np.stack([tr[t] for t in tickers]), np.stack([te[t] for t in tickers]))  # (N, D) each
               for m, (tr, te) in methods.items()}
    dim = next(iter(vectors.values()))[0].shape[1] if vectors else 16
    sectors = [run.sectors.get(t, UNKNOWN_SECTOR) for t in tickers]
    labels: list[str | None] = [None if s == UNKNOWN_SECTOR else s for s in sectors]
    base_key = ("baselines", tuple(tickers), tuple(labels), *(str(run.split.get(k)) for k in SPLIT_KEYS),
                str(run.train_start), str(run.test_start), dim, repr(cfg),
                str(run.rd.read_views_record().get("store_snapshot")), str(ws.store))
    cached = shared.get(base_key) if shared is not None else None
    if cached is None:
        vectors.update(baseline_vectors(train_ret, test_ret, dim, cfg.seed))

    known = np.array([s is not None for s in labels], dtype=bool)
    known_labels = [s for s in labels if s is not None]
    ps = probe_set(known_labels)
    notes.append(f"{len(tickers)} companies evaluated ({len(train_ret)} train and {len(test_ret)} test return "
                 f"days); {int((~known).sum())} with sector 'Unknown' excluded from the sector metrics")
    if ps.single:
        notes.append(f"single-company sector(s) left out of the sector metrics: {', '.join(ps.single)}")
    if ps.note:
        notes.append(ps.note)
    elif int(ps.keep.sum()) > LOO_MAX:
        notes.append(f"{int(ps.keep.sum())} companies in the sector probes: stratified 10-fold instead of "
                     "leave-one-company-out")

    sector: dict[str, Any] = {}
    similarity: dict[str, Any] = {}
    hedging: dict[str, Any] = {}
    for name, (train_x, test_x) in vectors.items():
        if ps.usable:
            sector[name] = sector_metrics(test_x[known], known_labels, knn_k=cfg.knn_k, seed=cfg.seed)
        similarity[name], hedging[name] = similarity_metrics(
            cosine_matrix(train_x), test_ret, labels, precision_k=cfg.precision_k)
    if cached is None:
        similarity["pearson"], hedging["pearson"] = similarity_metrics(
            pearson_similarity(train_ret), test_ret, labels, precision_k=cfg.precision_k)
        if shared is not None:
            shared[base_key] = copy.deepcopy({
                part: {m: v for m, v in scores.items() if m in BASELINES}
                for part, scores in (("sector", sector), ("similarity", similarity), ("hedging", hedging))})
    else:  # the same values, in the same key order as when computed
        for part, scores in (("sector", sector), ("similarity", similarity), ("hedging", hedging)):
            scores |= copy.deepcopy(cached[part])
    collapse = {key: collapse_metrics(embedding_rows(path, key if key in VIEWS else "implicit",
                                                     run.test_start, run.test_end))
                for key, path in sources.items()}
    regimes: dict[str, Any] | None = None
    if run.rd.gamma_path.exists():
        regimes = regime_report(run, shared=shared)
    else:
        notes.append(f"{run.rd.gamma_path.name} not in the run folder: no per-date scores by regime")
    ours = {"split": run.split, "sector": sector, "similarity": similarity, "hedging": hedging,
            "collapse": collapse, "regimes": regimes, "notes": notes}
    return run.rd.update_report(ours)


__all__ = ["evaluate_run", "headline_table", "render_markdown"]
