"""Runs the rating SQL of `fastrefund export-sql` on a real engine over a history's Parquet
files and compares every buyer with `rate`'s ratings.parquet: the same buyers, the same
star and reason codes, and the same score (to 1e-6; scores are integers, so exactly).

Usage: check_sql.py ENGINE SQL_FILE DATA_DIR RATINGS_PARQUET
  ENGINE: duckdb, or spark (pyspark in local mode; needs Java 17)
A history without buyers.parquet gets an empty buyers table, as the SQL expects.
Exit status 0 when every buyer agrees; otherwise the first disagreements are printed."""
import os
import sys
import time

import pandas as pd

TABLES = ("orders", "returns", "disputes", "buyers")
BUYERS_SCHEMA = "buyer_id BIGINT, registered_at TIMESTAMP"


def statements(path):
    return [s for s in open(path).read().split(";") if s.strip()]


def run_duckdb(sql, data):
    import duckdb

    con = duckdb.connect()
    for t in TABLES:
        f = f"{data}/{t}.parquet"
        if os.path.exists(f):
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{f}')")
        else:
            con.execute(f"CREATE TABLE {t} ({BUYERS_SCHEMA})")
    stmts = statements(sql)
    for s in stmts[:-1]:
        con.execute(s)
    return con.execute(stmts[-1]).df()


def run_spark(sql, data):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("fastrefund-check-sql")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for t in TABLES:
        f = f"{data}/{t}.parquet"
        if os.path.exists(f):
            spark.read.parquet(f).createOrReplaceTempView(t)
        else:
            spark.createDataFrame([], BUYERS_SCHEMA).createOrReplaceTempView(t)
    stmts = statements(sql)
    for s in stmts[:-1]:
        spark.sql(s)
    rows = spark.sql(stmts[-1]).collect()
    cols = ["buyer_id", "star", "score", "reason_1", "reason_2", "reason_3", "reason_4", "as_of", "model_version"]
    df = pd.DataFrame([[r[c] for c in cols] for r in rows], columns=cols)
    spark.stop()
    return df


def main():
    engine, sql, data, ratings = sys.argv[1:5]
    t0 = time.time()
    got = {"duckdb": run_duckdb, "spark": run_spark}[engine](sql, data)
    took = time.time() - t0
    got["buyer_id"] = got["buyer_id"].astype("uint64")
    got = got.set_index("buyer_id").sort_index()
    want = pd.read_parquet(ratings).set_index("buyer_id").sort_index()
    cols = ["star"] + [c for c in want.columns if c.startswith("reason_")]
    missing = want.index.difference(got.index)
    extra = got.index.difference(want.index)
    j = want[cols + ["score"]].join(got[cols + ["score"]].add_suffix("_sql"), how="inner")
    bad = pd.Series(False, index=j.index)
    for c in cols:
        bad |= j[c].fillna("").astype(str) != j[c + "_sql"].fillna("").astype(str)
    dscore = (j.score.astype(float) - j.score_sql.astype(float)).abs()
    bad |= dscore > 1e-6
    as_of_ok = (pd.to_datetime(got["as_of"]).astype(str) == str(pd.to_datetime(want["as_of"].iloc[0]).date())).all()
    version_ok = (got["model_version"] == want["model_version"].iloc[0]).all()
    print(
        f"{engine}: {len(got)} buyers from SQL, {len(want)} rated; {len(missing)} missing, {len(extra)} extra, "
        f"{int(bad.sum())} disagree (max score difference {dscore.max() if len(dscore) else 0:.2g}); "
        f"as_of {'ok' if as_of_ok else 'WRONG'}, model_version {'ok' if version_ok else 'WRONG'}; {took:.1f} s"
    )
    if bad.any():
        print(j[bad].head(10).to_string())
    ok = len(missing) == 0 and len(extra) == 0 and not bad.any() and as_of_ok and version_ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
