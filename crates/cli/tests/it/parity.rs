//! Batch and online agree: every buyer of the shipped sample gets the same score and
//! star from the batch scorer (features from the history, scored in process) and from
//! the running service.

use fastrefund_batch::{features::date_micros, rate::score_history, tables::load_history};
use fastrefund_core::domain::BuyerId;
use fastrefund_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_and_online_give_every_buyer_the_same_score_and_star() {
    let root = fastrefund_testkit::repo_root();
    let history = load_history(&root.join("data/sample")).unwrap();
    let card = fastrefund_snapshot::load_model(&root.join("data/snapshot/model.json"))
        .unwrap()
        .check()
        .unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let batch = score_history(&history, &card, date_micros(as_of)).unwrap();
    let app = spawn_app().await;
    let serving = app.state.serving().unwrap();
    assert_eq!(batch.buyer_ids.len(), serving.ratings.len());
    for (id, scored) in batch.buyer_ids.iter().zip(&batch.scored) {
        let online = serving.ratings.get(BuyerId(*id)).expect("rated online");
        assert_eq!(
            (online.score, online.star, online.reasons),
            (scored.score, scored.star, scored.reasons),
            "buyer {id}"
        );
    }
    // And through HTTP, for a spread of buyers.
    for (id, scored) in batch.buyer_ids.iter().zip(&batch.scored).step_by(97) {
        let (s, r) = json_of(app.get(&format!("/v1/buyers/{id}/rating"), Some(API)).await).await;
        assert_eq!(s, 200);
        assert_eq!(
            (r["score"].as_i64(), r["star"].as_u64()),
            (
                Some(i64::from(scored.score)),
                Some(u64::from(scored.star.get()))
            )
        );
    }
}
