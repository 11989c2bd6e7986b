"""Runs the rating SQL of `fastrefund export-sql` on a real engine over a history's Parquet
files and compares every buyer with `rate`'s ratings.parquet: the same buyers, the same
star and reason codes, and the same score (to 1e-6; scores are integers, so exactly).

Usage: check_sql.py ENGINE SQL DATA_DIR RATINGS_PARQUET [SQL DATA_DIR RATINGS_PARQUET ...]
                    [--fails SQL DATA_DIR MESSAGE ...]
  ENGINE: duckdb, or spark (pyspark in local mode; needs Java 17; one session for all)
  SQL: one .sql file, or a folder of them (`export-sql --buyer-shard k/N`, one per shard),
       run one after the other, their results taken together
The engine writes its result to Parquet (beside nothing: a temporary folder); DuckDB then
compares it with ratings.parquet, so no side is ever held in Python. DuckDB's memory is
capped by $FASTREFUND_DUCKDB_MEMORY (default 4GB; it spills to a temporary folder).
A table is DATA_DIR/NAME.parquet or DATA_DIR/NAME.csv (DuckDB detects a CSV's types,
Spark reads it as text). A history without a buyers table gets an empty one, as the SQL
expects.
Both engines run the SQL with a session time zone other than UTC (Asia/Kolkata, +05:30),
so a time read through the session's zone rather than as UTC would show.
Prints one line per SQL; exit status 0 when every buyer agrees, else the first
disagreements.

       check_sql.py fails ENGINE SQL DATA_DIR MESSAGE   (or --fails among the jobs above)
The SQL must stop on DATA_DIR with an error whose text holds MESSAGE (a bad value named
by its column); prints one line, exit status 0 when it does.

       check_sql.py write-histories SOURCE_DIR OUT_DIR
Writes SOURCE_DIR's history again the way data teams write it, as OUT_DIR/pandas,
OUT_DIR/polars and OUT_DIR/csv, and OUT_DIR/bad-amount and OUT_DIR/bad-time (see
write_histories), for `rate` and the SQL to read the same files; and OUT_DIR/kept, the
history with some returns refunded without return (see write_kept).

       check_sql.py differ RATINGS_A RATINGS_B
Prints how many buyers have another score, star or reason in B than in A; exit status 1
when none does (a check on B would prove nothing that A's did not)."""
import os
import sys
import tempfile
import time

TABLES = ("orders", "returns", "disputes", "buyers")
BUYERS_SCHEMA = "buyer_id BIGINT, registered_at TIMESTAMP"
MEMORY = os.environ.get("FASTREFUND_DUCKDB_MEMORY", "4GB")
# A money text that is not an amount (a decimal comma), and a time text that is no time.
BAD_AMOUNT = "12,50"
BAD_TIME = "2026-02-30T10:00:00Z"
# Not UTC, and not a whole hour away from it.
SESSION_ZONE = "Asia/Kolkata"
ENUMS = {
    "status": ["paid", "shipped", "delivered", "completed", "cancelled"],
    "reason": ["no_reason", "quality", "not_as_described", "wrong_item", "not_received", "other"],
    "outcome": ["received_ok", "received_mismatch", "not_shipped", "pending", "merchant_fault",
                "refunded_without_return"],
    "decision": ["buyer_won", "merchant_won", "split", "open"],
}
TIMES = {
    "ordered_at", "delivered_at", "requested_at", "shipped_at", "outcome_at", "opened_at",
    "decided_at", "registered_at",
}


def write_histories(src, out):
    """The history in SOURCE as data teams write it, in every type the contract accepts:
    - pandas (pyarrow): money as text ("129.90"), times datetime64[ns, UTC] (Parquet
      nanosecond timestamps), enums and categories categoricals (dictionaries), ids
      int64, and disputes an empty DataFrame, whose columns pandas writes with the null
      type;
    and OUT/bad-amount, the pandas history with one return's amount BAD_AMOUNT;
    - polars: orders' money Decimal(20,4) and times naive milliseconds, categories
      Categorical and statuses Enum; returns' money whole Int64 amounts, times UTC
      microseconds, ids Int64; disputes' times naive nanoseconds, flags Int8 0/1;
      buyers' registration a Date;
    - CSV as polars writes it (times with a +0000 offset, amounts "75.03"), as OUT/csv,
      and OUT/bad-time, that CSV with the first order's time BAD_TIME (February 30th)."""
    import pandas as pd
    import polars as pl

    os.makedirs(f"{out}/pandas")
    os.makedirs(f"{out}/polars")
    for t in TABLES:
        df = pd.read_parquet(f"{src}/{t}.parquet")
        for c in df.columns:
            if c in TIMES:
                df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[ns, UTC]")
            elif c == "amount":
                df[c] = df[c].map(lambda d: None if d is None else f"{d:.2f}")
            elif c in ENUMS or c == "category":
                df[c] = df[c].astype("category")
            elif c.endswith("_id"):
                df[c] = df[c].astype("int64")
        if t == "disputes":
            df = pd.DataFrame(columns=list(df.columns))
        df.to_parquet(f"{out}/pandas/{t}.parquet")
        if t == "returns":
            # The same with one amount that is no amount, in the first return asked (one
            # that every as-of date after it reads).
            df.loc[df["requested_at"].idxmin(), "amount"] = BAD_AMOUNT
            os.makedirs(f"{out}/bad-amount")
            df.to_parquet(f"{out}/bad-amount/{t}.parquet")
    for t in ("orders", "disputes", "buyers"):
        os.link(f"{out}/pandas/{t}.parquet", f"{out}/bad-amount/{t}.parquet")

    c = pl.col
    naive = lambda name, unit: c(name).dt.replace_time_zone(None).dt.cast_time_unit(unit)
    edits = {
        "orders": [
            c("amount").cast(pl.Decimal(20, 4)),
            naive("ordered_at", "ms"),
            naive("delivered_at", "ms"),
            c("category").cast(pl.Categorical),
            c("status").cast(pl.Enum(ENUMS["status"])),
        ],
        "returns": [
            c("return_id").cast(pl.Int64),
            c("order_id").cast(pl.Int64),
            c("buyer_id").cast(pl.Int64),
            c("amount").cast(pl.Float64).floor().cast(pl.Int64),
            c("reason").cast(pl.Categorical),
            c("outcome").cast(pl.Categorical),
        ],
        "disputes": [
            naive("opened_at", "ns"),
            naive("decided_at", "ns"),
            c("fraud_flag").cast(pl.Int8),
            c("decision").cast(pl.Enum(ENUMS["decision"])),
        ],
        "buyers": [c("registered_at").dt.date()],
    }
    os.makedirs(f"{out}/csv")
    os.makedirs(f"{out}/bad-time")
    for t in TABLES:
        df = pl.read_parquet(f"{src}/{t}.parquet")
        df.with_columns(edits[t]).write_parquet(f"{out}/polars/{t}.parquet")
        df.write_csv(f"{out}/csv/{t}.csv")
        if t == "orders":
            # The CSV with one order time that is no time, in the first order (every
            # order is read).
            first = pl.int_range(pl.len()) == 0
            df.with_columns(
                pl.when(first).then(pl.lit(BAD_TIME)).otherwise(c("ordered_at").cast(pl.String)).alias("ordered_at")
            ).write_csv(f"{out}/bad-time/{t}.csv")
        else:
            os.link(f"{out}/csv/{t}.csv", f"{out}/bad-time/{t}.csv")
    print(f"wrote {src} as pandas, polars and a CSV writer write it into {out}")


def write_kept(src, out):
    """OUT/kept: SOURCE's history with every seventh return received intact (by
    return_id) refunded without return instead (issue 27: the buyer kept the goods, so
    nothing was shipped or advanced, and the outcome is `refunded_without_return` at the
    same time), the rest linked unchanged. Such a return is a return asked, never a bad
    outcome and never one received intact, in `rate` and in the SQL alike."""
    import polars as pl

    c = pl.col
    os.makedirs(f"{out}/kept")
    returns = pl.read_parquet(f"{src}/returns.parquet")
    kept = (c("outcome") == "received_ok") & (c("return_id") % 7 == 0)
    returns.with_columns(
        pl.when(kept).then(pl.lit("refunded_without_return")).otherwise(c("outcome")).alias("outcome"),
        pl.when(kept).then(pl.lit(False)).otherwise(c("advanced")).alias("advanced"),
        pl.when(kept).then(None).otherwise(c("shipped_at")).alias("shipped_at"),
    ).write_parquet(f"{out}/kept/returns.parquet")
    for t in ("orders", "disputes", "buyers"):
        os.link(f"{src}/{t}.parquet", f"{out}/kept/{t}.parquet")
    n = returns.filter(kept).height
    print(f"wrote {src} with {n} returns refunded without return into {out}/kept")


def differ(a, b):
    import duckdb

    con = duckdb.connect()
    n = con.execute(
        f"""SELECT count(*) FROM read_parquet('{a}') x JOIN read_parquet('{b}') y USING (buyer_id)
            WHERE x.score <> y.score OR x.star <> y.star
               OR x.reason_1 IS DISTINCT FROM y.reason_1 OR x.reason_2 IS DISTINCT FROM y.reason_2
               OR x.reason_3 IS DISTINCT FROM y.reason_3 OR x.reason_4 IS DISTINCT FROM y.reason_4"""
    ).fetchone()[0]
    print(f"{n} buyers rated differently in {b} than in {a}")
    return 0 if n > 0 else 1


def statements(path):
    return [s for s in open(path).read().split(";") if s.strip()]


def duckdb_con(tmp):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{MEMORY}'")
    con.execute(f"SET temp_directory = '{tmp}/duckdb-spill'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET TimeZone = '{SESSION_ZONE}'")
    return con


def run_duckdb(sql, data, out, tmp):
    """Runs one SQL file; `out` is the Parquet file it writes. A table in CSV is read
    with DuckDB's type detection (amounts become doubles, times timestamps)."""
    con = duckdb_con(tmp)
    for t in TABLES:
        f = f"{data}/{t}"
        if os.path.exists(f"{f}.parquet"):
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{f}.parquet')")
        elif os.path.exists(f"{f}.csv"):
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_csv('{f}.csv')")
        else:
            con.execute(f"CREATE TABLE {t} ({BUYERS_SCHEMA})")
    # The strikes, for a query written with `export-sql --overrides`.
    if os.path.exists(f"{data}/overrides.csv"):
        con.execute(f"CREATE VIEW overrides AS SELECT * FROM read_csv('{data}/overrides.csv')")
    stmts = statements(sql)
    for s in stmts[:-1]:
        con.execute(s)
    con.execute(f"COPY ({stmts[-1]}) TO '{out}' (FORMAT parquet)")


_spark = None


def spark_session(base):
    """One Spark session for every SQL file this process runs (its start is most of a
    small check's time), stopped at exit, with its own temporary folder in `base` (the
    first caller's; a disk with room for its shuffles)."""
    global _spark
    if _spark is None:
        import atexit

        from pyspark.sql import SparkSession

        local = tempfile.TemporaryDirectory(dir=base)
        atexit.register(local.cleanup)

        _spark = (
            SparkSession.builder.master("local[2]")
            .appName("fastrefund-check-sql")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "8")
            # The setting export-sql's Spark header asks for: Parquet nanosecond
            # timestamps (pandas' default) read as nanoseconds since the epoch.
            .config("spark.sql.legacy.parquet.nanosAsLong", "true")
            # Not UTC: the SQL reads every time as UTC whatever the session's zone.
            .config("spark.sql.session.timeZone", SESSION_ZONE)
            .config("spark.local.dir", local.name)
            .getOrCreate()
        )
        _spark.sparkContext.setLogLevel("ERROR")
        atexit.register(_spark.stop)
    return _spark


def run_spark(sql, data, out, tmp):
    """Runs one SQL file; `out` is the folder of Parquet files it writes. A table in
    CSV is read as text (no type inference), as a warehouse's raw landing table is."""
    spark = spark_session(os.path.dirname(tmp))
    for t in TABLES:
        f = f"{data}/{t}"
        if os.path.exists(f"{f}.parquet"):
            spark.read.parquet(f"{f}.parquet").createOrReplaceTempView(t)
        elif os.path.exists(f"{f}.csv"):
            spark.read.option("header", True).csv(f"{f}.csv").createOrReplaceTempView(t)
        else:
            spark.createDataFrame([], BUYERS_SCHEMA).createOrReplaceTempView(t)
    if os.path.exists(f"{data}/overrides.csv"):
        spark.read.option("header", True).csv(f"{data}/overrides.csv").createOrReplaceTempView("overrides")
    stmts = statements(sql)
    for s in stmts[:-1]:
        spark.sql(s)
    spark.sql(stmts[-1]).write.parquet(out)


def fails(engine, sql, data, message):
    """The SQL stops on `data` with an error that holds `message`."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            {"duckdb": run_duckdb, "spark": run_spark}[engine](sql, data, f"{tmp}/out.parquet", tmp)
        except Exception as e:  # the engine's own error type
            said = str(e)
            if message in said:
                print(f"  {engine} on {os.path.basename(data)}: stops with {message!r}")
                return 0
            print(f"{engine}: stops, but without {message!r}: {said[:2000]}")
            return 1
        print(f"{engine}: the SQL ran to the end; expected it to stop with {message!r}")
        return 1


def write_overrides(snap, out):
    """An overrides file (export-cases --overrides' columns) for the snapshot in `snap`:
    the first reason of 40 buyers struck with the points it earns them now, and of 20
    more with one point more than it earns (worse evidence since: nothing struck)."""
    import json

    import pandas as pd

    model = json.load(open(f"{snap}/model.json"))
    column = {f["reason"]["code"]: f"points_{f['name']}" for f in model["features"]}
    r = pd.read_parquet(f"{snap}/ratings.parquet")
    rows = []
    for _, b in r.iterrows():
        code = b["reason_1"]
        if code is None or code not in column or pd.isna(b[column[code]]):
            continue
        worse = len(rows) >= 40
        rows.append((len(rows) + 1, int(b["buyer_id"]), code, int(b[column[code]]) + (1 if worse else 0), "2026-07-01T08:00:00Z"))
        if len(rows) == 60:
            break
    assert len(rows) == 60, f"only {len(rows)} buyers with a reason to strike"
    pd.DataFrame(rows, columns=["case_id", "buyer_id", "reason_code", "points_at_open", "decided_at"]).to_csv(out, index=False)


def main():
    if sys.argv[1] == "write-overrides":
        write_overrides(*sys.argv[2:4])
        return
    if sys.argv[1] == "write-histories":
        write_histories(*sys.argv[2:4])
        write_kept(*sys.argv[2:4])
        return
    if sys.argv[1] == "differ":
        sys.exit(differ(*sys.argv[2:4]))
    if sys.argv[1] == "fails":
        sys.exit(fails(*sys.argv[2:6]))
    engine, args = sys.argv[1], sys.argv[2:]
    # One process (one Spark session) for every (SQL, DATA_DIR, RATINGS) triple, and for
    # every `--fails SQL DATA_DIR MESSAGE` among them.
    jobs = []
    while args:
        n = 4 if args[0] == "--fails" else 3
        if len(args) < n:
            sys.exit(__doc__)
        jobs.append(args[:n])
        args = args[n:]
    if not jobs:
        sys.exit(__doc__)
    results = []
    for job in jobs:
        if job[0] == "--fails":
            results.append(fails(engine, *job[1:]) == 0)
            continue
        if len(jobs) > 1:
            print(f"  {os.path.basename(job[0])}, ", end="", flush=True)
        results.append(compare(engine, *job))
    sys.exit(0 if all(results) else 1)


def compare(engine, sql, data, ratings):
    """Runs `sql` over `data` and compares every buyer with `ratings`; prints one line
    (and the first disagreements) and says whether every buyer agrees."""
    files = sorted(f"{sql}/{f}" for f in os.listdir(sql) if f.endswith(".sql")) if os.path.isdir(sql) else [sql]
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(ratings))) as tmp:
        os.makedirs(f"{tmp}/got")
        t0 = time.time()
        for i, f in enumerate(files):
            out = f"{tmp}/got/part-{i:04}.parquet"
            {"duckdb": run_duckdb, "spark": run_spark}[engine](f, data, out, tmp)
        took = time.time() - t0
        con = duckdb_con(tmp)
        got = f"read_parquet('{tmp}/got/*{'/*.parquet' if engine == 'spark' else ''}')"
        want = f"read_parquet('{ratings}')"
        reasons = [f"reason_{k}" for k in range(1, 5)]
        # Each feature's points (`points_<feature>`, null where the value was missing),
        # as rate writes them, must be what the SQL computes too.
        points = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {want}").fetchall() if r[0].startswith("points_")]
        differs = " OR ".join(
            ["w.star IS DISTINCT FROM CAST(g.star AS INTEGER)", "abs(w.score - CAST(g.score AS DOUBLE)) > 1e-6"]
            + [f"w.{r} IS DISTINCT FROM g.{r}" for r in reasons]
            + [f"w.{p} IS DISTINCT FROM CAST(g.{p} AS INTEGER)" for p in points]
        )
        # Spark reads unsigned 64-bit ids as DECIMAL(20,0): compare ids as UBIGINT.
        join = f"(SELECT *, CAST(buyer_id AS UBIGINT) AS id FROM {want}) w FULL JOIN (SELECT *, CAST(buyer_id AS UBIGINT) AS id FROM {got}) g ON w.id = g.id"
        n_got, n_want, missing, extra, bad, dmax, as_of_ok, version_ok = con.execute(
            f"""SELECT count(g.id), count(w.id),
                       count(*) FILTER (WHERE g.id IS NULL),
                       count(*) FILTER (WHERE w.id IS NULL),
                       count(*) FILTER (WHERE w.id IS NOT NULL AND g.id IS NOT NULL AND ({differs})),
                       coalesce(max(abs(w.score - CAST(g.score AS DOUBLE))), 0),
                       bool_and(g.as_of IS NULL OR CAST(g.as_of AS DATE) = CAST(w.as_of AS DATE)),
                       bool_and(g.model_version IS NULL OR g.model_version = w.model_version)
                FROM {join}"""
        ).fetchone()
        print(
            f"{engine}{f' in {len(files)} buyer shards' if len(files) > 1 else ''}: {n_got} buyers from SQL, {n_want} rated; {missing} missing, {extra} extra, "
            f"{bad} disagree (max score difference {dmax:.2g}; {len(points)} points columns compared); "
            f"as_of {'ok' if as_of_ok else 'WRONG'}, model_version {'ok' if version_ok else 'WRONG'}; {took:.1f} s"
        )
        if bad:
            print(
                con.execute(
                    f"SELECT w.id, w.star, g.star, w.score, g.score, {', '.join(f'w.{r}, g.{r}' for r in reasons)} "
                    f"FROM {join} WHERE w.id IS NOT NULL AND g.id IS NOT NULL AND ({differs}) LIMIT 10"
                ).fetchall()
            )
        # n_got == n_want: no buyer twice (in two shards).
        return missing == 0 and extra == 0 and bad == 0 and as_of_ok and version_ok and n_got == n_want


if __name__ == "__main__":
    main()
