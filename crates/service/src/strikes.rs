//! Stars corrected by cases: the reasons struck by `rating` cases the buyers won
//! ([`Strike`]), applied to the snapshot's per-buyer points the moment a reviewer
//! decides, until a snapshot rated with those strikes (`rate --overrides`) carries the
//! same correction itself.
//!
//! - **One rule.** A struck reason's feature earns its best points while the buyer's
//!   evidence is no worse than the case saw ([`fastrefund_core::scoring::Scorecard::strike`]);
//!   `rate --overrides` applies the same function to the same points, so the star served
//!   after the decision is the star the next snapshot publishes. Applying a strike to a
//!   snapshot already rated with it changes nothing (its feature already earns the best
//!   points), so the service applies every strike the ledger holds to whatever snapshot
//!   it serves.
//! - **Where they come from.** The ledger: a decided rating case is the record (the
//!   override, with the case as its reason). They are read with each snapshot load
//!   ([`crate::AppState::reload`]: a service never serves a snapshot without them), again
//!   every [`REFRESH`] on a PostgreSQL ledger (replicas sharing it see each other's
//!   decisions within that; a SQLite ledger has one writing process, this one), and
//!   added at once when this process records a decision.
//! - **Every answer uses them**: the eligibility decision's star, the tracking call's
//!   limit, the exposure limit, the rating API and the buyer's page, which also say which
//!   cases corrected the star.
//! - **Cost.** A buyer with no strike costs one atomic load when no buyer has one, one
//!   read-locked hash look-up otherwise.

use fastrefund_core::cases::{Case, Strike, corrected};
use fastrefund_core::domain::{BuyerId, Star};
use fastrefund_core::ledger::StarLookup;
use fastrefund_snapshot::{BuyerRating, Ratings};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// How often the strikes are read again from the ledger.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// The strikes this process knows, by buyer.
#[derive(Default)]
pub struct Strikes {
    by_buyer: RwLock<HashMap<BuyerId, Vec<Strike>>>,
    /// Some buyer has a strike (the fast path's check).
    any: AtomicBool,
}

impl Strikes {
    /// Replaces every strike with those of `decided` (the ledger's decided rating cases).
    pub fn replace(&self, decided: &[Case]) {
        let mut map: HashMap<BuyerId, Vec<Strike>> = HashMap::new();
        for s in decided.iter().filter_map(Strike::of) {
            map.entry(s.buyer_id).or_default().push(s);
        }
        let mut g = self.by_buyer.write().unwrap_or_else(|e| e.into_inner());
        self.any.store(!map.is_empty(), Ordering::Release);
        *g = map;
    }

    /// Adds the strike `case` makes, if any (a decision this process recorded).
    pub fn add(&self, case: &Case) {
        let Some(s) = Strike::of(case) else {
            return;
        };
        let mut g = self.by_buyer.write().unwrap_or_else(|e| e.into_inner());
        let mine = g.entry(s.buyer_id).or_default();
        if !mine.iter().any(|x| x.case_id == s.case_id) {
            mine.push(s);
        }
        self.any.store(true, Ordering::Release);
    }

    /// `f` of `buyer`'s strikes, if they have any (read in place, under the lock).
    fn with<R>(&self, buyer: BuyerId, f: impl FnOnce(&[Strike]) -> R) -> Option<R> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let g = self.by_buyer.read().unwrap_or_else(|e| e.into_inner());
        g.get(&buyer).map(|mine| f(mine))
    }
}

/// A buyer's rating as served: the snapshot's, corrected by their strikes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub rating: BuyerRating,
    /// The cases whose strikes changed it (empty: the snapshot's rating as it is).
    pub corrected_by: Vec<u64>,
}

/// `buyer`'s rating in `ratings`, with `strikes` applied; `None` for a buyer the
/// snapshot does not know. A snapshot without points (written before they existed)
/// cannot be corrected: its rating is served as it is, and the case stays recorded for
/// the next `rate`.
pub fn served(ratings: &Ratings, strikes: &Strikes, buyer: BuyerId) -> Option<Served> {
    let rating = ratings.get(buyer)?;
    let plain = Served {
        rating,
        corrected_by: Vec::new(),
    };
    // Only a buyer with strikes is scored again, from the snapshot's points.
    let Some(Some(result)) = strikes.with(buyer, |mine| {
        let points = ratings.points(buyer)?;
        Some(corrected(ratings.model(), &points, mine))
    }) else {
        return Some(plain);
    };
    match result {
        Ok(Some((scored, by))) => Some(Served {
            rating: BuyerRating {
                star: scored.star,
                score: scored.score,
                reasons: scored.reasons,
                ..rating
            },
            corrected_by: by,
        }),
        Ok(None) => Some(plain),
        Err(e) => {
            // The snapshot's points do not fit its own model: served as rated, said.
            tracing::error!(buyer = buyer.0, error = %e, "a strike could not be applied");
            metrics::counter!("fastrefund_strikes_failed_total").increment(1);
            Some(plain)
        }
    }
}

/// The stars a tracking call reads: the snapshot's, corrected.
pub struct ServedStars {
    pub ratings: Arc<Ratings>,
    pub strikes: Arc<Strikes>,
}

impl StarLookup for ServedStars {
    fn star(&self, buyer: BuyerId) -> Option<Star> {
        served(&self.ratings, &self.strikes, buyer).map(|s| s.rating.star)
    }

    fn rated_as_of(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.ratings.rated_as_of()
    }
}

/// Reads the strikes again every `every` (a decision recorded by another replica).
pub fn spawn_refresh(state: crate::AppState, every: std::time::Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = state.refresh_strikes().await {
                tracing::warn!(error = %e, "the strikes were not read again; the last ones stay");
                metrics::counter!("fastrefund_strikes_refresh_failed_total").increment(1);
            }
        }
    });
}
