//! Every amount the API accepts comes back the same through `export-outcomes` (Parquet
//! and CSV) and the table reader the next `rate` uses: from a cent to just under 1e12,
//! across the 10,000,000,000.00 that the old Decimal(12,2) could not hold.

use crate::batch::run;
use chrono::TimeZone;
use fastrefund_batch::tables::{Table, load_table};
use fastrefund_core::domain::{
    BuyerId, Category, MerchantId, Money, OrderId, ReturnId, ReturnReason, ReturnRequest, Star,
};
use fastrefund_core::policy::Policy;
use fastrefund_ledger::Ledger;
use std::sync::Arc;

const AMOUNTS: [&str; 8] = [
    "0.01",
    "0.10",
    "59.90",
    "9999999999.99",
    "10000000000.00",
    "123456789012.34",
    "999999999999.98",
    "999999999999.99",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_amount_survives_export_and_the_table_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let ledger = Ledger::open(&path).unwrap();
    let policy = Arc::new(Policy::default());
    let at = |d: u32| chrono::Utc.with_ymd_and_hms(2026, 7, d, 2, 0, 0).unwrap();
    let mut want = Vec::new();
    for (i, a) in AMOUNTS.iter().enumerate() {
        // The API's own parser accepts it.
        let amount = Money::parse_refund(a).unwrap();
        let rid = i as u64 + 1;
        ledger
            .decide(
                ReturnRequest {
                    return_id: ReturnId(rid),
                    buyer_id: BuyerId(7),
                    order_id: OrderId(rid),
                    merchant_id: MerchantId(1),
                    category: Category::parse("shoes").unwrap(),
                    amount,
                    reason: ReturnReason::NoReason,
                    delivered_at: at(1),
                    requested_at: at(2),
                    tracking_number: None,
                },
                Some(Star::try_from(5u8).unwrap()),
                policy.clone(),
                "m".into(),
                at(2),
            )
            .await
            .unwrap();
        want.push((rid, amount));
    }
    drop(ledger);
    for ext in ["parquet", "csv"] {
        let out = dir.path().join(ext);
        std::fs::create_dir(&out).unwrap();
        let file = out.join(format!("returns.{ext}"));
        let o = run(&[
            "export-outcomes",
            "--ledger",
            path.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let loaded = load_table(&out, Table::Returns, &mut Default::default())
            .unwrap()
            .unwrap();
        let ids = loaded
            .df
            .column("return_id")
            .unwrap()
            .u64()
            .unwrap()
            .clone();
        let amounts = loaded.df.column("amount").unwrap().f64().unwrap().clone();
        let got: Vec<(u64, Money)> = ids
            .iter()
            .zip(amounts.iter())
            .map(|(id, x)| {
                let cents = (x.unwrap() * 100.0).round() as u64;
                (id.unwrap(), Money::from_cents(cents))
            })
            .collect();
        assert_eq!(got, want, "{ext}: amounts changed on the way");
    }
}
