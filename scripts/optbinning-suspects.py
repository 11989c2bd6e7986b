#!/usr/bin/env python3
"""Two suspects for what is left between `train` and optbinning, tried on optbinning itself.

On the seeded splits that `scripts/optbinning-splits.py WORK` wrote (WORK/TABLE-SEED.parquet),
fits optbinning's scorecard (the settings of scripts/bench_python_scorecard.py) four ways
and prints the mean test AUC of each over the splits, with the paired differences:

  trend by its classifier   monotonic_trend="auto_asc_desc": a pre-trained decision tree
                            over the pre-bins' shape picks ascending or descending
  trend by IV               each feature fitted ascending and descending, the direction
                            with the higher information value kept (what ours does)
  continuous points         the scorecard as benchmarked
  integer points            Scorecard(rounding=True), as our points are

Usage: target/bench-venv/bin/python scripts/optbinning-suspects.py WORK [TABLE] [SPLITS]
(TABLE defaults to breast_cancer, SPLITS to 20.)
"""

import os
import sys
import warnings

import numpy as np
import polars as pl

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_python_scorecard import BINNING, MAX_ITER, SCALING, C  # noqa: E402


def main():
    from optbinning import BinningProcess, OptimalBinning, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    work = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else "breast_cancer"
    splits = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    rows = []
    for seed in range(1, splits + 1):
        df = pl.read_parquet(os.path.join(work, f"{name}-{seed}.parquet"))
        feats = [c for c in df.columns if c not in ("bad", "__split")]
        train = df.filter(pl.col("__split") < "b_test")
        test = df.filter(pl.col("__split") >= "b_test")
        xtr, ytr = train.select(feats).to_pandas().astype(float), train["bad"].to_numpy().astype(int)
        xte, yte = test.select(feats).to_pandas().astype(float), test["bad"].to_numpy().astype(int)

        def auc(trends, rounding=False):
            bp = BinningProcess(variable_names=feats, **BINNING,
                                binning_fit_params={c: {"monotonic_trend": trends[c]} for c in feats})
            sc = Scorecard(binning_process=bp, estimator=LogisticRegression(C=C, max_iter=MAX_ITER),
                           scaling_method="pdo_odds", scaling_method_params=SCALING, rounding=rounding)
            sc.fit(xtr, ytr)
            return roc_auc_score(yte, -sc.score(xte))

        by_iv = {}
        for c in feats:
            ivs = {}
            for trend in ("ascending", "descending"):
                ob = OptimalBinning(name=c, monotonic_trend=trend, **BINNING).fit(xtr[c].values, ytr)
                ivs[trend] = ob.binning_table.build()["IV"].iloc[-1]
            by_iv[c] = max(ivs, key=ivs.get)
        classifier = {c: "auto_asc_desc" for c in feats}
        rows.append((auc(classifier), auc(by_iv), auc(classifier, rounding=True)))
        print(seed, " ".join(f"{v:.4f}" for v in rows[-1]), flush=True)
    r = np.array(rows)
    se = lambda d: d.std(ddof=1) / np.sqrt(len(d))
    print(f"{name}: trend by its classifier {r[:, 0].mean():.4f}, by IV {r[:, 1].mean():.4f} "
          f"(diff {np.mean(r[:, 1] - r[:, 0]):+.4f} ± {se(r[:, 1] - r[:, 0]):.4f}); "
          f"integer points {r[:, 2].mean():.4f} (diff {np.mean(r[:, 2] - r[:, 0]):+.4f} ± {se(r[:, 2] - r[:, 0]):.4f})")


if __name__ == "__main__":
    main()
