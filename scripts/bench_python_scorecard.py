#!/usr/bin/env python3
"""Train a Python scorecard (optbinning) on a labelled table and time it.

The Python half of scripts/bench-training.sh, which compares it with `fastrefund train
--table` on the same table and the same out-of-time split. It measures, with
time.perf_counter, separately:

  import_seconds importing optbinning and scikit-learn (they pull in ortools, cvxpy, scipy)
  read_seconds   reading the Parquet table with polars
  prep_seconds   the train/test split and the conversion to pandas (nulls become NaN,
                 which optbinning puts in its own "Missing" bin)
  fit_seconds    optbinning.Scorecard.fit: BinningProcess (optimal binning of every
                 feature) + sklearn LogisticRegression on the WOE + pdo/odds scaling
  score_seconds  Scorecard.score on the test rows
  total_seconds  the whole script up to writing the JSON (incl. scoring the train rows
                 for the train AUC and computing the AUCs)

and the ROC AUC (sklearn.metrics.roc_auc_score) on the train and the test rows. It writes
the result as JSON to --out and prints it.

The settings mirror the Rust trainer's defaults (crates/train/src/lib.rs TrainParams): at most
20 pre-bins and 6 bins a feature, bins of at least 1% of the rows, a monotonic bad rate
in whichever direction fits (auto_asc_desc), L2 logistic regression (sklearn C=1.0,
which like linfa's alpha=1.0 weighs the penalty against the loss summed over rows), and
600 points at good:bad odds 50 with 20 points to double the odds. Unlike the Rust
trainer it drops no feature (no IV floor, no correlation filter) unless --min-iv is given.

Usage:
  python scripts/bench_python_scorecard.py --table T.parquet --label bad_90d \
      --split-column period --split-at 2026-04-01 --exclude buyer_id,period --out result.json
"""

import argparse
import json
import os
import sys
import time
import warnings

T0 = time.perf_counter()

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

# optbinning's settings in every comparison with `fastrefund train` (the defaults of the
# arguments below; scripts/optbinning-sign-rule.py and optbinning-suspects.py use them).
BINNING = {"max_n_prebins": 20, "max_n_bins": 6, "min_bin_size": 0.01}
TREND = "auto_asc_desc"
C = 1.0
MAX_ITER = 1000
SCALING = {"pdo": 20.0, "odds": 50.0, "scorecard_points": 600.0}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--table", required=True, help="Parquet table with the label and the features")
    p.add_argument("--label", required=True, help="0/1 label column (1 = bad)")
    p.add_argument("--split-column", required=True, help="string column: rows < --split-at train, >= test")
    p.add_argument("--split-at", required=True, help='e.g. "2026-04-01"')
    p.add_argument("--exclude", default="", help="comma-separated columns that are not features")
    p.add_argument("--out", required=True, help="where the result JSON goes")
    p.add_argument("--max-n-bins", type=int, default=BINNING["max_n_bins"])
    p.add_argument("--min-bin-size", type=float, default=BINNING["min_bin_size"])
    p.add_argument("--max-n-prebins", type=int, default=BINNING["max_n_prebins"])
    p.add_argument("--monotonic-trend", default=TREND)
    p.add_argument("--C", type=float, default=C, help="inverse L2 strength of the logistic regression")
    p.add_argument("--max-iter", type=int, default=MAX_ITER)
    p.add_argument("--min-iv", type=float, default=None,
                   help="drop features with a lower IV (the Rust trainer uses 0.02); default: keep all")
    p.add_argument("--n-jobs", type=int, default=1, help="BinningProcess worker processes (optbinning default: 1)")
    p.add_argument("--pdo", type=float, default=SCALING["pdo"])
    p.add_argument("--odds", type=float, default=SCALING["odds"])
    p.add_argument("--points", type=float, default=SCALING["scorecard_points"], help="score at --odds")
    return p.parse_args()


def blas_info():
    """Which BLAS kernel numpy runs (threadpoolctl comes with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_info

        return [
            {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except Exception as e:  # informative only
        return [{"error": str(e)}]


def main():
    a = parse_args()
    # optbinning pulls in ortools and cvxpy (~1.5 s to import). cvxpy may log that it cannot
    # load the HiGHS solver (ortools' own HiGHS symbols shadow highspy's): harmless here, the
    # binning uses ortools' CP-SAT and the scorecard sklearn.
    t = time.perf_counter()
    import optbinning
    import sklearn
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    import_seconds = time.perf_counter() - t

    t = time.perf_counter()
    df = pl.read_parquet(a.table)
    read_seconds = time.perf_counter() - t

    t = time.perf_counter()
    exclude = {c for c in a.exclude.split(",") if c} | {a.label, a.split_column}
    missing = (exclude - {""}) - set(df.columns)
    if missing:
        sys.exit(f"columns not in {a.table}: {sorted(missing)}")
    features = [c for c in df.columns if c not in exclude]
    categorical = [c for c in features if df.schema[c] in (pl.String, pl.Categorical, pl.Boolean)]
    df = df.filter(pl.col(a.label).is_not_null())
    is_train = pl.col(a.split_column).cast(pl.String) < a.split_at
    train, test = df.filter(is_train), df.filter(~is_train)
    if train.height == 0 or test.height == 0:
        sys.exit(f"empty split: {train.height} train rows, {test.height} test rows")

    def to_xy(part):
        # Float nulls -> NaN (optbinning's "Missing" bin); categoricals stay object columns.
        x = part.select(
            [pl.col(c).cast(pl.String) if c in categorical else pl.col(c).cast(pl.Float64) for c in features]
        ).to_pandas()
        y = part.get_column(a.label).cast(pl.Int64).to_numpy()
        return x, y

    x_train, y_train = to_xy(train)
    x_test, y_test = to_xy(test)
    prep_seconds = time.perf_counter() - t

    selection = {"iv": {"min": a.min_iv}} if a.min_iv is not None else None
    binning_process = BinningProcess(
        variable_names=features,
        categorical_variables=categorical or None,
        max_n_prebins=a.max_n_prebins,
        max_n_bins=a.max_n_bins,
        min_bin_size=a.min_bin_size,
        selection_criteria=selection,
        binning_fit_params={c: {"monotonic_trend": a.monotonic_trend} for c in features if c not in categorical},
        n_jobs=a.n_jobs,
    )
    estimator = LogisticRegression(C=a.C, max_iter=a.max_iter)  # lbfgs, L2
    scorecard = Scorecard(
        binning_process=binning_process,
        estimator=estimator,
        scaling_method="pdo_odds",
        scaling_method_params={"pdo": a.pdo, "odds": a.odds, "scorecard_points": a.points},
    )
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scorecard.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - t

    t = time.perf_counter()
    score_test = scorecard.score(x_test)
    score_seconds = time.perf_counter() - t

    score_train = scorecard.score(x_train)
    # optbinning's pdo_odds points grow with the good:bad odds (a high score is a good
    # buyer), as in our scorecard, so the bad-vs-good AUC ranks by -score.
    auc_train = roc_auc_score(y_train, -score_train)
    auc_test = roc_auc_score(y_test, -score_test)
    # Cross-check with the probabilities, which are not affected by the scaling sign.
    auc_test_proba = roc_auc_score(y_test, scorecard.predict_proba(x_test)[:, 1])

    selected = list(scorecard.binning_process_.get_support(names=True))
    total_seconds = time.perf_counter() - T0
    result = {
        "library": "optbinning",
        "version": optbinning.__version__,
        "sklearn_version": sklearn.__version__,
        "polars_version": pl.__version__,
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "table": a.table,
        "rows_train": int(train.height),
        "rows_test": int(test.height),
        "bads_train": int(y_train.sum()),
        "bads_test": int(y_test.sum()),
        "features": len(features),
        "features_selected": len(selected),
        "import_seconds": import_seconds,
        "read_seconds": read_seconds,
        "prep_seconds": prep_seconds,
        "fit_seconds": fit_seconds,
        "fit_breakdown_seconds": {  # optbinning's own timers inside Scorecard.fit
            "binning": getattr(scorecard, "_time_binning_process", None),
            "logistic_regression": getattr(scorecard, "_time_estimator", None),
            "scaling": getattr(scorecard, "_time_build_scorecard", None),
        },
        "score_seconds": score_seconds,
        "total_seconds": total_seconds,
        "auc_train": auc_train,
        "auc_test": auc_test,
        "auc_test_proba": auc_test_proba,
        "score_test_range": [float(np.min(score_test)), float(np.max(score_test))],
        "params": {
            "max_n_prebins": a.max_n_prebins,
            "max_n_bins": a.max_n_bins,
            "min_bin_size": a.min_bin_size,
            "monotonic_trend": a.monotonic_trend,
            "min_iv": a.min_iv,
            "C": a.C,
            "max_iter": a.max_iter,
            "n_jobs": a.n_jobs,
            "scaling": {"pdo": a.pdo, "odds": a.odds, "scorecard_points": a.points},
        },
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        "blas": blas_info(),
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
