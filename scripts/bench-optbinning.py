#!/usr/bin/env python3
"""Test AUC of our scorecard trainer against optbinning's on several tables, same split.

For every table: a seeded random 30% of the rows is the test split, written into the
table as `__split` ("a_train" / "b_test"), so both trainers fit and test on exactly the
same rows. Then, one after the other:

  ours      fastrefund train --table T --label bad --split-column __split --split-at b_test
            (our defaults: IV >= 0.02, WOE correlation <= 0.9)
  ours-all  optbinning's settings: every feature kept (--min-iv 0 --max-correlation 1),
            as optbinning keeps every feature, and no floor of 50 rows a bin
            (--min-bin-rows 1), as optbinning's only floor is the 1% share both have
  ours-auto ours-all with --trend F=auto for every numeric feature (peak and valley allowed)
  optbinning scripts/bench_python_scorecard.py (BinningProcess + LogisticRegression,
            settings mirroring ours: 20 pre-bins, 6 bins, 1% bins, auto_asc_desc)
  optbinning-auto the same with monotonic_trend=auto

Tables (binary labels, none tuned for):
  breast_cancer  scikit-learn's bundled Wisconsin set, 569 rows x 30; bad = malignant
  diabetes       scikit-learn's bundled diabetes set, 442 x 10; bad = progression above median
  digits         scikit-learn's bundled digits, 1,797 x 64 pixels; bad = the digit is 8
  wine           scikit-learn's bundled wine set, 178 x 13; bad = cultivar 0
  generated      a generated table of 30,000 rows: a peaked risk, a risk with a special
                 value (-999 = "not asked"), missing values, a categorical column, noise
  buyers         buyer features of `fastrefund generate --buyers 20000 --seed 11` as of
                 2026-01-01 (the performance population), label bad_90d

Usage: target/bench-venv/bin/python scripts/bench-optbinning.py OUTDIR
(after scripts/bench-training.sh or `pip install -r scripts/requirements-bench.txt` in that
venv). Writes OUTDIR/results.json and prints a Markdown table.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.environ.get("FASTREFUND_BIN", os.path.join(ROOT, "target/release/fastrefund"))
SEED = 7


def split(df, seed=SEED):
    rng = np.random.default_rng(seed)
    df = df.copy()
    df["__split"] = np.where(rng.random(len(df)) < 0.3, "b_test", "a_train")
    return df


def sklearn_tables():
    from sklearn import datasets

    out = {}
    b = datasets.load_breast_cancer(as_frame=True)
    df = b.data.copy()
    df.columns = [c.replace(" ", "_") for c in df.columns]
    df["bad"] = (b.target == 0).astype("int64")
    out["breast_cancer"] = df
    d = datasets.load_diabetes(as_frame=True, scaled=False)
    df = d.data.copy()
    df["bad"] = (d.target > d.target.median()).astype("int64")
    out["diabetes"] = df
    g = datasets.load_digits(as_frame=True)
    df = g.data.copy()
    df["bad"] = (g.target == 8).astype("int64")
    out["digits"] = df
    w = datasets.load_wine(as_frame=True)
    df = w.data.copy()
    df.columns = [c.replace("/", "_") for c in df.columns]
    df["bad"] = (w.target == 0).astype("int64")
    out["wine"] = df
    return out


def generated(n=30000):
    rng = np.random.default_rng(11)
    age = rng.uniform(18, 80, n)
    income = rng.lognormal(10, 0.6, n)
    asked = rng.random(n) < 0.8
    debt = np.where(asked, rng.uniform(0, 1, n), -999.0)
    cat = rng.choice(list("ABCDEFGH"), n, p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
    cat_risk = {c: r for c, r in zip("ABCDEFGH", [-0.5, 0, 0.3, 0.6, -0.2, 1.0, 0.1, 1.5])}
    noise = rng.normal(size=(n, 3))
    logit = (
        -3.0
        + 1.6 * np.exp(-(((age - 45) / 10) ** 2))  # a peak in mid-life
        - 0.5 * (np.log(income) - 10)
        + np.where(asked, 2.0 * debt, 0.8)  # not asked: a risk of its own
        + np.vectorize(cat_risk.get)(cat)
    )
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    income = np.where(rng.random(n) < 0.05, np.nan, income)
    df = pd.DataFrame(
        {"age": age, "income": income, "debt_ratio": debt, "segment": cat,
         "noise_1": noise[:, 0], "noise_2": noise[:, 1], "noise_3": noise[:, 2]}
    )
    df["bad"] = y.astype("int64")
    return df


def buyers(work):
    import polars as pl

    hist = os.path.join(work, "hist-20k")
    if not os.path.exists(os.path.join(hist, "truth.parquet")):
        subprocess.run([BIN, "generate", "--buyers", "20000", "--seed", "11", "--out", hist],
                       check=True, capture_output=True)
    feats = os.path.join(work, "buyers-features.parquet")
    subprocess.run([BIN, "features", "--data", hist, "--as-of", "2026-01-01", "--out", feats],
                   check=True, capture_output=True)
    df = pl.read_parquet(feats)
    active = [c for c in df.columns if c.startswith("active")]
    if active:
        df = df.filter(pl.col(active[0]))
    df = df.drop([c for c in ["buyer_id", *active] if c in df.columns])
    df = df.rename({"bad_90d": "bad"}).with_columns(pl.col("bad").cast(pl.Int64))
    return df.to_pandas()


def ours(path, out, extra):
    subprocess.run(
        [BIN, "train", "--table", path, "--label", "bad", "--split-column", "__split",
         "--split-at", "b_test", "--no-challenger", "--out", out, *extra],
        check=True, capture_output=True,
    )
    ev = json.load(open(os.path.join(out, "evaluation.json")))
    m = json.load(open(os.path.join(out, "model.json")))
    return {"auc_test": ev["test"]["auc"], "features": len(m["features"])}


def theirs(path, out, trend):
    py = sys.executable
    subprocess.run(
        [py, os.path.join(HERE, "bench_python_scorecard.py"), "--table", path, "--label", "bad",
         "--split-column", "__split", "--split-at", "b_test", "--exclude", "__split",
         "--out", out, "--monotonic-trend", trend],
        check=True, capture_output=True,
    )
    r = json.load(open(out))
    return {"auc_test": r["auc_test"], "features": r.get("features")}


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/bench-optbinning")
    os.makedirs(work, exist_ok=True)
    tables = sklearn_tables()
    tables["generated"] = generated()
    tables["buyers"] = buyers(work)
    results = {}
    for name, df in tables.items():
        df = split(df)
        path = os.path.join(work, f"{name}.parquet")
        df.to_parquet(path, index=False)
        numeric = [c for c in df.columns if c not in ("bad", "__split") and df[c].dtype.kind in "fi"]
        auto = [x for c in numeric for x in ("--trend", f"{c}=auto")]
        special = ["--special", "debt_ratio=-999"] if name == "generated" else []
        r = {
            "rows": len(df),
            "features": len(df.columns) - 2,
            "bad_rate": float(df["bad"].mean()),
            "test_rows": int((df["__split"] == "b_test").sum()),
            "ours": ours(path, os.path.join(work, f"{name}-ours"), special),
            "ours-all": ours(path, os.path.join(work, f"{name}-ours-all"),
                             ["--min-iv", "0", "--max-correlation", "1", "--min-bin-rows", "1", *special]),
            "ours-auto": ours(path, os.path.join(work, f"{name}-ours-auto"),
                              ["--min-iv", "0", "--max-correlation", "1", "--min-bin-rows", "1", *special, *auto]),
            "optbinning": theirs(path, os.path.join(work, f"{name}-optb.json"), "auto_asc_desc"),
            "optbinning-auto": theirs(path, os.path.join(work, f"{name}-optb-auto.json"), "auto"),
        }
        results[name] = r
        print(name, json.dumps({k: v for k, v in r.items()}), flush=True)
    json.dump(results, open(os.path.join(work, "results.json"), "w"), indent=2)
    print()
    print("| table | rows (test) | bad rate | ours, defaults | ours, optbinning's settings | optbinning | Δ same settings | ours, trend auto | optbinning, trend auto | Δ trend auto |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        a = lambda k: r[k]["auc_test"]
        print(f"| {name} | {r['rows']:,} ({r['test_rows']:,}) | {r['bad_rate']:.1%} | {a('ours'):.4f} | "
              f"{a('ours-all'):.4f} | {a('optbinning'):.4f} | {a('ours-all') - a('optbinning'):+.4f} | "
              f"{a('ours-auto'):.4f} | {a('optbinning-auto'):.4f} | {a('ours-auto') - a('optbinning-auto'):+.4f} |")


if __name__ == "__main__":
    main()
