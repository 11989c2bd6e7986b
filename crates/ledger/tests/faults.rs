#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ledger on a disk that fills up or turns read-only: a small tmpfs of its own
//! (needs root to mount, as CI runs; elsewhere these tests say they were skipped).
//! Nothing is acknowledged that was not recorded, the ledger says it cannot record
//! (readiness follows), and it recovers by itself when the space comes back.

use fastrefund_core::domain::{BuyerId, Category, MerchantId, OrderId, ReturnId, ReturnReason};
use fastrefund_core::domain::{ReturnRequest, Star};
use fastrefund_core::policy::Policy;
use fastrefund_ledger::Ledger;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A tmpfs mounted on a fresh folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(SmallDisk { dir })
    }
    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
    fn remount(&self, opts: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "remount {opts}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the ledger's threads may hold its files for a moment more.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn request(rid: u64) -> ReturnRequest {
    use chrono::TimeZone;
    ReturnRequest {
        return_id: ReturnId(rid),
        buyer_id: BuyerId(rid % 50),
        order_id: OrderId(rid),
        merchant_id: MerchantId(1),
        category: Category::parse("shoes").unwrap(),
        amount: "10.00".parse().unwrap(),
        reason: ReturnReason::NoReason,
        delivered_at: chrono::Utc.with_ymd_and_hms(2026, 6, 30, 2, 0, 0).unwrap(),
        requested_at: chrono::Utc.with_ymd_and_hms(2026, 7, 1, 2, 0, 0).unwrap(),
        // A long tracking number: rows fill the disk sooner.
        tracking_number: Some(format!("SF{rid:0>60}")),
    }
}

fn decisions_in(path: &Path) -> Vec<u64> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut q = c.prepare("SELECT return_id FROM decisions").unwrap();
    q.query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|r| r.unwrap() as u64)
        .collect()
}

#[tokio::test]
async fn a_full_disk_acknowledges_nothing_unrecorded_and_recovers_with_space() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let path = disk.path().join("ledger.sqlite");
    let l = Ledger::open(&path).unwrap();
    let p = Arc::new(Policy::default());
    let star = Some(Star::try_from(5u8).unwrap());
    let now = chrono::Utc::now();
    let (mut acked, mut refused) = (Vec::new(), 0);
    for rid in 1..=200_000u64 {
        match l
            .decide(request(rid), star, p.clone(), "m".into(), now)
            .await
        {
            Ok(_) => acked.push(rid),
            Err(e) => {
                assert!(
                    matches!(e, fastrefund_store::LedgerError::Unavailable(_)),
                    "{e}"
                );
                refused += 1;
                if refused >= 20 {
                    break;
                }
            }
        }
    }
    assert!(
        refused >= 20,
        "the disk never filled ({} decisions)",
        acked.len()
    );
    assert!(l.health().is_err(), "a ledger that cannot commit says so");
    // Fill what little room is left: the probe then fails too (not ready).
    let filler = disk.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
    }
    assert!(l.probe().is_err(), "unhealthy while the disk is full");
    assert!(l.health().is_err());
    // Every acknowledged decision is there, and nothing else.
    let mut stored = decisions_in(&path);
    stored.sort_unstable();
    assert_eq!(stored, acked);
    // Room again: the probe clears it, and decisions are recorded again.
    std::fs::remove_file(&filler).unwrap();
    disk.remount("size=64m");
    l.probe().unwrap();
    assert_eq!(l.health(), Ok(()));
    let last = acked.last().copied().unwrap_or_default() + 1_000;
    l.decide(request(last), star, p.clone(), "m".into(), now)
        .await
        .unwrap();
    drop(l);
    fastrefund_ledger::check_invariants(&path).unwrap();
}

#[tokio::test]
async fn a_read_only_ledger_is_refused_at_start() {
    let Some(disk) = SmallDisk::mount("8m") else {
        return;
    };
    let path = disk.path().join("ledger.sqlite");
    let l = Ledger::open(&path).unwrap();
    let p = Arc::new(Policy::default());
    let star = Some(Star::try_from(5u8).unwrap());
    l.decide(request(1), star, p, "m".into(), chrono::Utc::now())
        .await
        .unwrap();
    drop(l);
    // Let the ledger's threads close their files, then make the disk read-only.
    let mut remounted = false;
    for _ in 0..50 {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(disk.path())
            .output()
            .unwrap();
        if ok.status.success() {
            remounted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(remounted, "could not make the disk read-only");
    let e = Ledger::open(&path).err().expect("refused").to_string();
    assert!(e.contains(path.to_str().unwrap()), "{e}");
    disk.remount("rw");
    assert_eq!(decisions_in(&path), vec![1]);
}
