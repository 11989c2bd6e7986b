#![allow(clippy::unwrap_used, clippy::expect_used)]
//! How long a large snapshot takes to load and how much memory it holds per buyer.
//! Writes a snapshot of N buyers (default 10,000,000; `SNAPSHOT_BUYERS` to change) with
//! the batch writer `rate` uses — scores spread over the shipped model's range, stars
//! from its cut-offs, up to four reason codes, points per feature — then loads it three
//! times with `Ratings::load` (what `serve` and a reload do: read, checksum, decode,
//! validate every row), each time in a fresh child process so that the memory it reports is the
//! snapshot's alone: the time, the resident memory the loaded snapshot holds, the
//! process's peak, and bytes per buyer.
//! Run: `cargo bench --bench snapshot_load`.

use chrono::NaiveDate;
use fastrefund_batch::rate::{Extras, Scores, ratings_frame, write_snapshot};
use fastrefund_batch::scores::PointsTable;
use fastrefund_core::scoring::{MAX_REASONS, ReasonRef, Scored};
use fastrefund_snapshot::Ratings;
use std::time::Instant;

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn peak_rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    kb * 1024
}

/// The child: loads the snapshot once and prints `seconds held_bytes peak_bytes`.
fn load_once(dir: &std::path::Path) {
    let before = rss_bytes();
    let t = Instant::now();
    let r = Ratings::load(dir).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let held = rss_bytes().saturating_sub(before);
    println!("{secs} {held} {} {}", peak_rss_bytes(), r.len());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("snapshot_load: bench");
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--load-once") {
        load_once(std::path::Path::new(&args[i + 1]));
        return;
    }
    let n: usize = std::env::var("SNAPSHOT_BUYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let root = &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model =
        fastrefund_snapshot::load_checked_model(&root.join("data/snapshot/model.json")).unwrap();
    let card = model.card();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot");
    let t = Instant::now();
    {
        let cuts = card.model().stars.min_score;
        let (lo, hi) = (cuts[0] - 80, cuts[3] + 80);
        let nf = card.n_features() as u64;
        // A cheap deterministic spread (splitmix64).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let scored: Vec<Scored> = (0..n)
            .map(|_| {
                let score = lo + (next() % (hi - lo) as u64) as i32;
                let k = (next() % (MAX_REASONS as u64 + 1)) as usize;
                let mut reasons = [None; MAX_REASONS];
                for (i, r) in reasons.iter_mut().enumerate().take(k) {
                    *r = Some(ReasonRef {
                        feature: ((next() + i as u64) % nf) as u16,
                        missing: next() % 4 == 0,
                    });
                }
                Scored {
                    score,
                    star: card.model().stars.star_of(score),
                    reasons,
                }
            })
            .collect();
        // Points per feature as a model gives them (a few dozen either side of 0),
        // one value in eight missing.
        let cells = n * nf as usize;
        let (points, missing) = (0..cells)
            .map(|_| {
                let r = next();
                ((r % 121) as i32 - 60, (r >> 32) % 8 == 0)
            })
            .unzip();
        let s = Scores {
            buyer_ids: (0..n as u64).map(|i| 100_000 + i * 3).collect(),
            scored,
            points: PointsTable::from_flat(nf as usize, points, missing).unwrap(),
            features: Default::default(),
        };
        let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
        let mut df = ratings_frame(card, &s, as_of, None).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        write_snapshot(&out, &model, &mut df, as_of, "bench", Extras::default()).unwrap();
    }
    let file = std::fs::metadata(out.join("ratings.parquet"))
        .unwrap()
        .len();
    eprintln!(
        "wrote {n} buyers in {:.1} s ({:.1} MiB of parquet)",
        t.elapsed().as_secs_f64(),
        file as f64 / 1048576.0
    );
    let mut runs: Vec<(f64, u64, u64)> = (0..3)
        .map(|_| {
            let o = std::process::Command::new(std::env::current_exe().unwrap())
                .arg("--load-once")
                .arg(&out)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let text = String::from_utf8(o.stdout).unwrap();
            let v: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(v[3].parse::<usize>().unwrap(), n);
            (
                v[0].parse().unwrap(),
                v[1].parse().unwrap(),
                v[2].parse().unwrap(),
            )
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let held = runs[1].1;
    let peak = runs.iter().map(|r| r.2).max().unwrap();
    println!(
        "{{\"buyers\": {n}, \"parquet_bytes\": {file}, \"load_seconds_min\": {:.3}, \"load_seconds_median\": {:.3}, \"load_seconds_max\": {:.3}, \"resident_bytes_held\": {held}, \"bytes_per_buyer_resident\": {:.1}, \"bytes_per_buyer_packed\": {}, \"peak_rss_bytes_during_load\": {peak}, \"peak_bytes_per_buyer\": {:.1}}}",
        runs[0].0,
        runs[1].0,
        runs[2].0,
        held as f64 / n as f64,
        Ratings::BYTES_PER_BUYER,
        peak as f64 / n as f64
    );
}
