"""Runs the rating SQL of `fastrefund export-sql` on a real engine over a history's Parquet
files and compares every buyer with `rate`'s ratings.parquet: the same buyers, the same
star and reason codes, and the same score (to 1e-6; scores are integers, so exactly).

Usage: check_sql.py ENGINE SQL DATA_DIR RATINGS_PARQUET
  ENGINE: duckdb, or spark (pyspark in local mode; needs Java 17)
  SQL: one .sql file, or a folder of them (`export-sql --buyer-shard k/N`, one per shard),
       run one after the other, their results taken together
The engine writes its result to Parquet (beside nothing: a temporary folder); DuckDB then
compares it with ratings.parquet, so no side is ever held in Python. DuckDB's memory is
capped by $FASTREFUND_DUCKDB_MEMORY (default 4GB; it spills to a temporary folder).
A history without buyers.parquet gets an empty buyers table, as the SQL expects.
Prints one line; exit status 0 when every buyer agrees, else the first disagreements."""
import os
import sys
import tempfile
import time

TABLES = ("orders", "returns", "disputes", "buyers")
BUYERS_SCHEMA = "buyer_id BIGINT, registered_at TIMESTAMP"
MEMORY = os.environ.get("FASTREFUND_DUCKDB_MEMORY", "4GB")


def statements(path):
    return [s for s in open(path).read().split(";") if s.strip()]


def duckdb_con(tmp):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{MEMORY}'")
    con.execute(f"SET temp_directory = '{tmp}/duckdb-spill'")
    con.execute("SET preserve_insertion_order = false")
    return con


def run_duckdb(sql, data, out, tmp):
    """Runs one SQL file; `out` is the Parquet file it writes."""
    con = duckdb_con(tmp)
    for t in TABLES:
        f = f"{data}/{t}.parquet"
        if os.path.exists(f):
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{f}')")
        else:
            con.execute(f"CREATE TABLE {t} ({BUYERS_SCHEMA})")
    stmts = statements(sql)
    for s in stmts[:-1]:
        con.execute(s)
    con.execute(f"COPY ({stmts[-1]}) TO '{out}' (FORMAT parquet)")


def run_spark(sql, data, out, tmp):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("fastrefund-check-sql")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.local.dir", tmp)
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
    spark.sql(stmts[-1]).write.parquet(out)
    spark.stop()


def main():
    engine, sql, data, ratings = sys.argv[1:5]
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
        differs = " OR ".join(
            ["w.star IS DISTINCT FROM CAST(g.star AS INTEGER)", "abs(w.score - CAST(g.score AS DOUBLE)) > 1e-6"]
            + [f"w.{r} IS DISTINCT FROM g.{r}" for r in reasons]
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
            f"{bad} disagree (max score difference {dmax:.2g}); "
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
        ok = missing == 0 and extra == 0 and bad == 0 and as_of_ok and version_ok and n_got == n_want
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
