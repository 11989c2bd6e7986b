"""What the benchmark scripts read back from a timed command: GNU time's report
(`/usr/bin/time -v -o FILE`, or bench-training.sh's wrapper, which writes the same
fields) and the stage timers fastrefund logs (tracing spans closing with time.busy)."""
import re

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def rusage(text):
    """CPU seconds and peak RSS; plus wall seconds when GNU time's Elapsed line is there."""
    field = lambda name: re.search(rf"{re.escape(name)}: (\S+)", text)
    r = {}
    elapsed = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    if elapsed:
        h, m, s = ([0.0, 0.0] + [float(x) for x in elapsed.group(1).split(":")])[-3:]
        r["wall_seconds"] = round(h * 3600 + m * 60 + s, 2)
    r["user_seconds"] = float(field("User time (seconds)").group(1))
    r["sys_seconds"] = float(field("System time (seconds)").group(1))
    r["max_rss_mib"] = round(float(field("Maximum resident set size (kbytes)").group(1)) / 1024, 1)
    return r


def spans(log_text, keep_fields=True):
    """Seconds per closed span; `name{fields}` keys, or with keep_fields=False the spans
    of one name summed under that name."""
    got = {}
    for line in log_text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.search(r"INFO (\w+)(\{[^}]*\})?: \S+: close time\.busy=([0-9.]+)(ns|µs|us|ms|s)\b", line)
        if m:
            seconds = float(m.group(3)) * UNITS[m.group(4)]
            if keep_fields:
                got[m.group(1) + (m.group(2) or "")] = seconds
            else:
                got[m.group(1)] = round(got.get(m.group(1), 0) + seconds, 3)
    return got
