#!/usr/bin/env bash
# The README's crate table (Architecture: | crate | uses | its job |) and the arrows in
# Cargo.toml's opening comment (`#   NAME -> a, b`) against `cargo metadata`: every
# workspace crate has a row, and each row's "uses" names exactly that crate's workspace
# dependencies (normal and build), then after "; tests:" its dev-only ones. Crates are
# named without the `fastrefund-` prefix (the cli crate is `fastrefund`). Fails naming
# every difference. Needs no build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --no-deps --format-version 1 --offline | python3 -c '
import json, re, sys

meta = json.load(sys.stdin)
short = lambda n: n if n == "fastrefund" else n.removeprefix("fastrefund-")
names = {p["name"] for p in meta["packages"]}
truth = {}
for p in meta["packages"]:
    normal, dev = set(), set()
    for d in p["dependencies"]:
        if d["name"] in names:
            (dev if d["kind"] == "dev" else normal).add(short(d["name"]))
    truth[short(p["name"])] = (normal, dev - normal)

def parse_uses(cell):
    cell = cell.strip()
    normal, _, dev = cell.partition("; tests:")
    split = lambda s: {x.strip() for x in s.split(",") if x.strip() and x.strip() != "—"}
    return split(normal), split(dev)

def compare(where, claimed):
    errors = []
    for name in sorted(truth.keys() - claimed.keys()):
        errors.append(f"{where}: no entry for workspace crate {name}")
    for name in sorted(claimed.keys() - truth.keys()):
        errors.append(f"{where}: {name} is not a workspace crate")
    for name in sorted(truth.keys() & claimed.keys()):
        for kind, said, real in zip(("uses", "tests use"), claimed[name], truth[name]):
            if said != real:
                missing = ", ".join(sorted(real - said)) or "nothing"
                extra = ", ".join(sorted(said - real)) or "nothing"
                errors.append(f"{where}: {name} {kind} {sorted(said)} but cargo metadata says "
                              f"{sorted(real)} (missing: {missing}; not a dependency: {extra})")
    return errors

# README: the rows of the table whose header is | crate | uses | its job |.
readme, rows, in_table = open("README.md").read().splitlines(), {}, False
for line in readme:
    if re.match(r"^\|\s*crate\s*\|\s*uses\s*\|", line):
        in_table = True
        continue
    if in_table:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`([a-z-]+)`", cells[0])
        if m:
            rows[short(m.group(1))] = parse_uses(cells[1])
if not rows:
    sys.exit("README.md: no table with the header | crate | uses | its job |")
errors = compare("README.md crate table", rows)

# Cargo.toml: the comment lines before [workspace] of the form "#   NAME -> a, b".
arrows = {}
for line in open("Cargo.toml"):
    if not line.startswith("#"):
        break
    m = re.match(r"^#\s+([a-z-]+)\s+->\s+(.*?)\s*$", line)
    if m:
        arrows[m.group(1)] = parse_uses(m.group(2))
if not arrows:
    errors.append("Cargo.toml: no \"#   NAME -> a, b\" lines in its opening comment")
else:
    errors += compare("Cargo.toml comment", arrows)

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"README.md crate table and Cargo.toml comment agree with cargo metadata ({len(truth)} crates)")
'
