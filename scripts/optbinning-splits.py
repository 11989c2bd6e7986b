#!/usr/bin/env python3
"""Ours against optbinning on many random splits of the small tables, not one.

`scripts/bench-optbinning.py` compares the two trainers on one seeded 30% test split per
table. On the bundled scikit-learn tables that split is 47 to 548 rows, so one split's
AUC difference is mostly which rows it drew. This script repeats the like-for-like
comparison ("ours, optbinning's settings" against optbinning, both with their default
trend; ours also with `--binning optimal`, `--prebinning cart`, both, and both with
`--wrong-signs keep`: optbinning's algorithm option for option) on SPLITS seeded splits of each small table,
and reports the paired difference: its mean, its standard error over splits, and how
many splits each side wins.

Usage: target/bench-venv/bin/python scripts/optbinning-splits.py OUTDIR [SPLITS]
(SPLITS defaults to 20; the venv as for bench-optbinning.py). Writes OUTDIR/splits.json
and prints a Markdown table.
"""

import importlib.util
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench", os.path.join(HERE, "bench-optbinning.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

SAME_SETTINGS = ["--min-iv", "0", "--max-correlation", "1", "--min-bin-rows", "1"]


def main():
    work = sys.argv[1]
    splits = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    os.makedirs(work, exist_ok=True)
    results = {}
    for name, table in bench.sklearn_tables().items():
        rows = []
        for seed in range(1, splits + 1):
            df = bench.split(table, seed)
            path = os.path.join(work, f"{name}-{seed}.parquet")
            df.to_parquet(path, index=False)
            o = bench.ours(path, os.path.join(work, f"{name}-{seed}-ours"), SAME_SETTINGS)
            d = bench.ours(path, os.path.join(work, f"{name}-{seed}-defaults"), [])
            x = bench.ours(path, os.path.join(work, f"{name}-{seed}-optimal"),
                           SAME_SETTINGS + ["--binning", "optimal"])
            c = bench.ours(path, os.path.join(work, f"{name}-{seed}-cart"),
                           SAME_SETTINGS + ["--prebinning", "cart"])
            co = bench.ours(path, os.path.join(work, f"{name}-{seed}-cart-optimal"),
                            SAME_SETTINGS + ["--prebinning", "cart", "--binning", "optimal"])
            # Option for option optbinning's: its pre-bins, its grouping, and wrong-signed
            # coefficients kept as its scorecard keeps them.
            k = bench.ours(path, os.path.join(work, f"{name}-{seed}-parity"),
                           SAME_SETTINGS + ["--prebinning", "cart", "--binning", "optimal",
                                            "--wrong-signs", "keep"])
            optb = os.path.join(work, f"{name}-{seed}-optb.json")
            # optbinning is deterministic and slow: a split's result is kept across runs.
            t = ({"auc_test": json.load(open(optb))["auc_test"]} if os.path.exists(optb)
                 else bench.theirs(path, optb, "auto_asc_desc"))
            rows.append({"seed": seed, "test_rows": int((df["__split"] == "b_test").sum()),
                         "ours": o["auc_test"], "ours_defaults": d["auc_test"],
                         "ours_optimal": x["auc_test"],
                         "ours_cart": c["auc_test"],
                         "ours_cart_optimal": co["auc_test"],
                         "ours_parity": k["auc_test"],
                         "optbinning": t["auc_test"]})
            print(name, json.dumps(rows[-1]), flush=True)
        results[name] = rows
    json.dump(results, open(os.path.join(work, "splits.json"), "w"), indent=2)
    print()
    print("| table | splits | test rows (mean) | optbinning, mean AUC | ours (same settings), mean AUC "
          "| Δ mean ± s.e. | ours ahead / tied / behind | ours (defaults), Δ mean ± s.e. "
          "| ours, `--binning optimal`, Δ mean ± s.e. | ahead / tied / behind "
          "| ours, `--prebinning cart`, Δ mean ± s.e. | ahead / tied / behind "
          "| ours, both, Δ mean ± s.e. | ahead / tied / behind "
          "| ours, both and `--wrong-signs keep`, Δ mean ± s.e. | ahead / tied / behind |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        o = np.array([r["ours"] for r in rows])
        d = np.array([r["ours_defaults"] for r in rows])
        t = np.array([r["optbinning"] for r in rows])
        x = np.array([r["ours_optimal"] for r in rows])
        c = np.array([r["ours_cart"] for r in rows])
        co = np.array([r["ours_cart_optimal"] for r in rows])
        k = np.array([r["ours_parity"] for r in rows])
        diff, diff_d, diff_x, diff_c, diff_co, diff_k = o - t, d - t, x - t, c - t, co - t, k - t
        tally = lambda x: f"{int((x > 1e-9).sum())} / {int((abs(x) <= 1e-9).sum())} / {int((x < -1e-9).sum())}"
        se = lambda x: x.std(ddof=1) / np.sqrt(len(x))
        ahead, tied = int((diff > 1e-9).sum()), int((abs(diff) <= 1e-9).sum())
        print(f"| {name} | {len(rows)} | {np.mean([r['test_rows'] for r in rows]):.0f} | {t.mean():.4f} | "
              f"{o.mean():.4f} | {diff.mean():+.4f} ± {se(diff):.4f} | {ahead} / {tied} / {len(rows) - ahead - tied} | "
              f"{diff_d.mean():+.4f} ± {se(diff_d):.4f} | {diff_x.mean():+.4f} ± {se(diff_x):.4f} | {tally(diff_x)} | "
              f"{diff_c.mean():+.4f} ± {se(diff_c):.4f} | {tally(diff_c)} | "
              f"{diff_co.mean():+.4f} ± {se(diff_co):.4f} | {tally(diff_co)} | "
              f"{diff_k.mean():+.4f} ± {se(diff_k):.4f} | {tally(diff_k)} |")


if __name__ == "__main__":
    main()
