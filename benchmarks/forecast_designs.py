"""Designs of the `dynmix_har` correction (HAR × exp(c + x·β)), each chosen and fitted on the training period only,
with their test-period QLIKE for the record (README, "Forecasts").

    PYTHONPATH=. python -m benchmarks.forecast_designs --home HOME --run RUN [--horizons 1 5 22]

For each horizon and feature set: the ridge penalty (or β = 0: HAR times a constant) chosen by the blocked
cross-validation of `HARCorrection` (5 blocks of training dates, purged by the horizon; the blocks cover every
stressed spell of the training period), its cross-validated QLIKE, and the test-period QLIKE of the refit. The
"CV-chosen design" is the feature set with the lowest cross-validated QLIKE: a choice made on the training period
only. Prints a markdown table; the test figures are never used to choose.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dynmix.forecast.baselines import HARRV, forward_mean
from dynmix.forecast.compare import qlike_loss
from dynmix.forecast.correction import HARCorrection, state_features
from dynmix.forecast.world import world_variance
from dynmix.runs.models import load_world_run
from dynmix.runs.panel import origin_dates
from dynmix.runs.rundir import RunDir
from dynmix.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--horizons", type=int, nargs="+", default=[1, 5, 22])
    args = ap.parse_args()
    ws = Workspace(Path(args.home))
    wr = load_world_run(ws, RunDir.resolve(ws, args.run))
    raw = wr.vt.raw_returns.double().cpu().numpy()
    n, t_all = raw.shape
    z = wr.world.cfg.latent
    print(f"train end {wr.train_end}; test {wr.vt.dates[wr.train_last + 1]} -> {wr.vt.dates[-1]}; {n} companies")
    rows: dict[str, dict[int, str]] = {}
    for h in args.horizons:
        real = forward_mean(raw**2, h)
        train = origin_dates(wr.panel, 0, wr.train_last, h)
        test = origin_dates(wr.panel, wr.train_last + 1, t_all - 1, h)
        both = torch.cat([train, test])
        wv = world_variance(wr.world, wr.panel, both, h)
        har = HARRV(h).fit(raw, wr.train_last).predict(raw)
        st = state_features(wr.world, wr.panel, both)
        with np.errstate(all="ignore"):
            ratio = np.log(wv / har)[..., None]
            log_ratio = np.log(real / har)
        designs = {
            "latents + market latent + log(world/HAR)": np.concatenate([st, ratio], -1),
            "latents + market latent": st,
            "company latents only": st[..., :z],
            "market latent only": st[..., z:],
            "log(world/HAR) only": ratio,
        }
        tr = train.cpu().numpy()
        tr = tr[tr <= wr.train_last - h]  # targets inside the training period
        ii, tt = np.meshgrid(np.arange(n), tr, indexing="ij")
        order = np.lexsort((ii.ravel(), tt.ravel()))
        ii, tt = ii.ravel()[order], tt.ravel()[order]
        keep = np.zeros((n, t_all), dtype=bool)
        keep[:, test.cpu().numpy()] = True
        keep &= np.isfinite(real) & (real > 0) & np.isfinite(har) & (har > 0)
        for x in designs.values():
            keep &= np.isfinite(x).all(-1)
        q_har = float(qlike_loss(real[keep], har[keep]).mean())
        rows.setdefault("HAR-RV (no correction)", {})[h] = f"— | {q_har:.3f}"
        cv_best = (np.inf, "")
        for name, x in designs.items():
            m = HARCorrection("qlike", gap=h).fit(x[ii, tt], log_ratio[ii, tt], real[ii, tt], har[ii, tt], tt)
            pred = har * m.predict(x)
            q = float(qlike_loss(real[keep], pred[keep]).mean())
            cv = m.valid_qlike_[m.alpha_]
            pen = "β = 0" if not np.isfinite(m.alpha_) else f"{m.alpha_:g}"
            rows.setdefault(name, {})[h] = f"{cv:.3f} ({pen}) | {q:.3f}"
            if cv < cv_best[0]:
                cv_best = (cv, name)
            print(f"h={h} {name}: CV {cv:.3f} penalty {pen} test {q:.3f} (HAR {q_har:.3f})", flush=True)
        rows.setdefault("CV-chosen design", {})[h] = cv_best[1]
    hs = args.horizons
    print("\n| features | " + " | ".join(f"h = {h}: CV (penalty) | test" for h in hs) + " |")
    print("|---|" + "---:|---:|" * len(hs))
    for name, by_h in rows.items():
        print(f"| {name} | " + " | ".join(by_h.get(h, "") for h in hs) + " |")


if __name__ == "__main__":
    main()
