#!/usr/bin/env python3
"""How much of the AUC gap between `fastrefund train` and optbinning is our sign rule?

Our trainer drops a feature whose logistic coefficient has the wrong sign (points must
rise with the weight of evidence, so every band's points read the way its words do);
optbinning's Scorecard keeps it. This fits, on optbinning's own binning of each table of
scripts/bench-optbinning.py (which must have run first: it writes the tables with their
split into WORK), scikit-learn's L2 logistic regression (C = 1) three ways:

  unconstrained   optbinning's scorecard as it is
  greedy drop     our rule: drop the worst wrong-signed feature, refit, repeat
  bounded         every coefficient held to the right sign (scipy L-BFGS-B), the exact
                  optimum under the rule, to see whether the greedy order loses anything

and prints the test AUC of each, and of the greedy model's integer points.

Usage: target/bench-venv/bin/python scripts/optbinning-sign-rule.py [WORK]
       target/bench-venv/bin/python scripts/optbinning-sign-rule.py --splits WORK
       (after scripts/optbinning-splits.py WORK: the rule on each of its splits)
"""

import os
import sys
import warnings

import numpy as np
import pandas as pd
from optbinning import BinningProcess
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_python_scorecard import BINNING, MAX_ITER, SCALING, TREND, C  # noqa: E402

warnings.filterwarnings("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = ["breast_cancer", "diabetes", "digits", "wine", "generated", "buyers"]


def rule_aucs(df):
    """Test AUCs of optbinning's scorecard on `df` (with its `__split`): unconstrained,
    under our sign rule (greedy drop), its integer points, the bounded optimum; and how
    many features the rule kept of how many."""
    tr, te = df[df["__split"] != "b_test"], df[df["__split"] == "b_test"]
    feats = [c for c in df.columns if c not in ("bad", "__split")]
    bp = BinningProcess(feats, **BINNING, binning_fit_params={c: {"monotonic_trend": TREND} for c in feats})
    bp.fit(tr[feats], tr["bad"])
    x_tr = bp.transform(tr[feats], metric="woe").values
    x_te = bp.transform(te[feats], metric="woe").values
    y = tr["bad"].values
    full = LogisticRegression(C=C, max_iter=MAX_ITER).fit(x_tr, y)
    auc_full = roc_auc_score(te["bad"], full.decision_function(x_te))
    # The right sign is the one most coefficients have (optbinning's WOE convention).
    sign = np.sign(np.median(full.coef_[0]))
    keep = list(range(x_tr.shape[1]))
    while True:
        m = LogisticRegression(C=C, max_iter=MAX_ITER).fit(x_tr[:, keep], y)
        wrong = [(v, k) for v, k in zip(m.coef_[0] * sign, keep) if v < 0]
        if not wrong or len(keep) == 1:
            break
        keep.remove(min(wrong)[1])
    auc_greedy = roc_auc_score(te["bad"], m.decision_function(x_te[:, keep]))
    points = np.round(x_te[:, keep] * m.coef_[0] * SCALING["pdo"] / np.log(2)).sum(axis=1)
    auc_points = roc_auc_score(te["bad"], points)
    p = x_tr.shape[1]

    def loss(w):
        z = x_tr @ w[1:] + w[0]
        pr = 1 / (1 + np.exp(-z))
        value = np.sum(np.logaddexp(0, z) - y * z) + 0.5 / C * w[1:] @ w[1:]
        grad = np.concatenate([[np.sum(pr - y)], x_tr.T @ (pr - y) + w[1:] / C])
        return value, grad

    bound = (0, None) if sign > 0 else (None, 0)
    r = minimize(loss, np.zeros(p + 1), jac=True, method="L-BFGS-B", bounds=[(None, None)] + [bound] * p)
    auc_bounded = roc_auc_score(te["bad"], x_te @ r.x[1:] + r.x[0])
    return auc_full, auc_greedy, auc_points, auc_bounded, len(keep), p


def over_splits(work):
    """After scripts/optbinning-splits.py WORK: the rule's cost on each of its splits, and
    each of our variants against optbinning under the rule."""
    import json

    ours = json.load(open(os.path.join(work, "splits.json")))
    variants = [v for v in ("ours", "ours_optimal", "ours_cart", "ours_cart_optimal")
                if v in next(iter(ours.values()))[0]]
    print("| table | splits | optbinning | optbinning + our sign rule | rule's cost, mean ± s.e. | "
          + " | ".join(f"{v} − (optbinning + rule), mean ± s.e." for v in variants) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(variants))
    se = lambda x: x.std(ddof=1) / np.sqrt(len(x))
    for name, rows in ours.items():
        full, greedy = [], []
        for r in rows:
            df = pd.read_parquet(os.path.join(work, f"{name}-{r['seed']}.parquet"))
            a = rule_aucs(df)
            full.append(a[0]), greedy.append(a[1])
        full, greedy = np.array(full), np.array(greedy)
        cells = []
        for v in variants:
            d = np.array([r[v] for r in rows]) - greedy
            cells.append(f"{d.mean():+.4f} ± {se(d):.4f}")
        print(f"| {name} | {len(rows)} | {full.mean():.4f} | {greedy.mean():.4f} | "
              f"{(greedy - full).mean():+.4f} ± {se(greedy - full):.4f} | " + " | ".join(cells) + " |")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--splits":
        return over_splits(sys.argv[2])
    work = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/bench-optbinning")
    print("| table | optbinning (unconstrained) | greedy drop (our rule) | integer points | bounded | kept of |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in TABLES:
        df = pd.read_parquet(os.path.join(work, f"{name}.parquet"))
        auc_full, auc_greedy, auc_points, auc_bounded, kept, p = rule_aucs(df)
        print(f"| {name} | {auc_full:.4f} | {auc_greedy:.4f} | {auc_points:.4f} | {auc_bounded:.4f} | {kept} of {p} |")


if __name__ == "__main__":
    main()
