//! Cases: a person contests what the system decided, and a reviewer decides, before a
//! deadline. The lifecycle is a pure state machine; the stores read a case, call
//! [`step`] (or [`open`]), and write what it returns: the new state, the events to
//! append to the case's audit trail (nothing is edited in place), and the effects on
//! the money that the same transaction must apply.
//!
//! ```text
//!            open ──────────────┐ (rating, decision: no other party)
//!              │ (outcome)      ▼
//!   awaiting_response ──► open_for_review ◄──── lease lapses / release
//!     │  respond / respond_by   │ claim                │
//!     │  passes                 ▼                      │
//!     └──── claim ─────────► claimed ──────────────────┘
//!     (a reviewer may step in at once; the other party may still answer, while
//!      claimed, until respond_by)
//!                               │ decide (the lease holder)
//!                               ▼
//!                            decided (closed: final; its correction is applied in
//!                                     the same transaction)
//! ```
//!
//! - **Deadlines** come from the policy (`[cases]`): the other party's turn
//!   (`respond_by`, default 48 h; a party that misses it loses its turn and the
//!   opener's statement stands), the decision (`decide_by`: 72 h for `outcome` and
//!   `decision`, 15 days for `rating`; the FCRA's 30 days are the outer bound a policy
//!   may set) and a reviewer's lease (60 min, renewed by claiming again). Time moves a
//!   case only when it is read ([`tick`]): a store ticks every case it touches, so the
//!   moves are the same whenever they are observed.
//! - A case past `decide_by` and not decided is **breached**: it is marked so and goes
//!   to the top of the queue ([`queue_order`]).
//! - Only the moves below exist; anything else is a typed [`CaseRefusal`].

use crate::domain::{BuyerId, OrderId, Outcome, ReturnId};
use crate::scoring::{ModelError, Points, Scorecard, Scored};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What a case contests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// A settled return's outcome. Subject: the return.
    Outcome,
    /// The buyer's star or one of its reasons. Subject: the buyer (and the return or
    /// order it is about, if any).
    Rating,
    /// An automated refusal (no instant release, no advance). Subject: the return.
    Decision,
}

/// Who speaks in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Buyer,
    Merchant,
}

impl CaseKind {
    /// Every kind, in the API's order.
    pub const ALL: [CaseKind; 3] = [CaseKind::Outcome, CaseKind::Rating, CaseKind::Decision];

    /// The kind's name in the API and the stores.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::Outcome => "outcome",
            CaseKind::Rating => "rating",
            CaseKind::Decision => "decision",
        }
    }
}

impl Party {
    /// The party's name in the API and the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Buyer => "buyer",
            Party::Merchant => "merchant",
        }
    }

    fn other(self) -> Party {
        match self {
            Party::Buyer => Party::Merchant,
            Party::Merchant => Party::Buyer,
        }
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    BuyerWon,
    MerchantWon,
    /// Shared fault: nothing is corrected (a loss stays counted); the note says why.
    Split,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::BuyerWon => "buyer_won",
            Verdict::MerchantWon => "merchant_won",
            Verdict::Split => "split",
        }
    }
}

/// Where a case is. Serialised with a `state` tag, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CaseState {
    /// The other party's turn to answer, until `respond_by`.
    AwaitingResponse,
    /// Waiting for a reviewer.
    OpenForReview,
    /// A reviewer holds the case until `lease_until` (renewed when they claim again).
    Claimed {
        reviewer: String,
        lease_until: DateTime<Utc>,
    },
    /// Decided by `reviewer` at `at`.
    Decided {
        verdict: Verdict,
        reviewer: String,
        note: String,
        at: DateTime<Utc>,
        /// The corrected outcome, for an `outcome` case the buyer won.
        corrected_outcome: Option<Outcome>,
    },
}

impl CaseState {
    /// The state's name in the API.
    pub fn name(&self) -> &'static str {
        match self {
            CaseState::AwaitingResponse => "awaiting_response",
            CaseState::OpenForReview => "open",
            CaseState::Claimed { .. } => "claimed",
            CaseState::Decided { .. } => "decided",
        }
    }

    /// Whether the queue's `state` filter `f` lists this state: `open` lists every case
    /// a reviewer may take (open for review, or still in the other party's turn); any
    /// other filter is the state's name.
    pub fn listed_under(&self, f: &str) -> bool {
        match f {
            "open" => matches!(self, CaseState::OpenForReview | CaseState::AwaitingResponse),
            other => self.name() == other,
        }
    }

    /// Whether the case still waits for a decision (so its subject has an open case).
    pub fn is_open(&self) -> bool {
        !matches!(self, CaseState::Decided { .. })
    }

    /// The verdict, once decided.
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            CaseState::Decided { verdict, .. } => Some(*verdict),
            _ => None,
        }
    }
}

/// Case deadlines (`[cases]` of the policy file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseDeadlines {
    /// The other party's turn (default 48 h).
    pub respond: Duration,
    /// Decision deadlines per kind (defaults 72 h, 15 days, 72 h).
    pub decide_outcome: Duration,
    pub decide_rating: Duration,
    pub decide_decision: Duration,
    /// A reviewer's lease (default 60 min).
    pub lease: Duration,
}

impl Default for CaseDeadlines {
    fn default() -> Self {
        CaseDeadlines {
            respond: Duration::hours(48),
            decide_outcome: Duration::hours(72),
            decide_rating: Duration::days(15),
            decide_decision: Duration::hours(72),
            lease: Duration::minutes(60),
        }
    }
}

impl CaseDeadlines {
    fn decide(&self, kind: CaseKind) -> Duration {
        match kind {
            CaseKind::Outcome => self.decide_outcome,
            CaseKind::Rating => self.decide_rating,
            CaseKind::Decision => self.decide_decision,
        }
    }
}

/// The longest statement a party may write, in characters.
pub const MAX_STATEMENT_CHARS: usize = 4_000;
/// The most evidence links a statement may carry.
pub const MAX_EVIDENCE: usize = 10;
/// The longest evidence link, in bytes.
pub const MAX_EVIDENCE_LEN: usize = 2_000;

/// A case as the stores keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub case_id: u64,
    pub kind: CaseKind,
    pub buyer_id: BuyerId,
    pub return_id: Option<ReturnId>,
    pub order_id: Option<OrderId>,
    pub opened_by: Party,
    pub opened_at: DateTime<Utc>,
    /// The other party's deadline, for a case that waits for one.
    pub respond_by: Option<DateTime<Utc>>,
    /// When the other party answered, if they did.
    #[serde(default)]
    pub responded_at: Option<DateTime<Utc>>,
    pub decide_by: DateTime<Utc>,
    /// Past `decide_by` before a decision.
    pub breached: bool,
    /// The reason a `rating` case contests, if it names one (not the star as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contested: Option<Contested>,
    #[serde(flatten)]
    pub state: CaseState,
}

/// The reason a `rating` case contests: its code as the rating shows it (a feature's
/// code, with `:missing` when the value was missing) and the points the buyer's value of
/// that feature earned in the snapshot in service when the case was opened: the
/// evidence the buyer contests. The service fills `points` in; a buyer cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contested {
    pub reason_code: String,
    pub points: i32,
}

/// A reason struck from a buyer's star: a `rating` case the buyer won on a contested
/// reason. From the decision on, the reason's feature earns its best points while the
/// buyer's value of it earns no fewer points than when the case was opened (the evidence
/// the reviewer found wrong); new evidence, which earns fewer, counts again. The
/// service applies it to the snapshot's points at once, and `rate --overrides` to the
/// next snapshot's: one rule ([`crate::scoring::Scorecard::strike`]), so the two agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strike {
    pub case_id: u64,
    pub buyer_id: BuyerId,
    pub reason_code: String,
    pub points_at_open: i32,
    pub decided_at: DateTime<Utc>,
}

impl Strike {
    /// The strike `case` makes: a decided `rating` case the buyer won, on a contested
    /// reason; `None` for any other case.
    pub fn of(case: &Case) -> Option<Strike> {
        let CaseState::Decided {
            verdict: Verdict::BuyerWon,
            at,
            ..
        } = &case.state
        else {
            return None;
        };
        let c = case.contested.as_ref()?;
        (case.kind == CaseKind::Rating).then(|| Strike {
            case_id: case.case_id,
            buyer_id: case.buyer_id,
            reason_code: c.reason_code.clone(),
            points_at_open: c.points,
            decided_at: *at,
        })
    }
}

/// A buyer's rating with `strikes` (theirs) applied to their per-feature `points`: the
/// corrected rating and the cases that struck a reason, or `None` when no strike holds
/// (none given, the evidence got worse since, or the model no longer has the feature).
pub fn corrected(
    card: &Scorecard,
    points: &Points,
    strikes: &[Strike],
) -> Result<Option<(Scored, Vec<u64>)>, ModelError> {
    let mut p = points.clone();
    let mut by = Vec::new();
    for s in strikes {
        if card.strike(&mut p, &s.reason_code, s.points_at_open) {
            by.push(s.case_id);
        }
    }
    if by.is_empty() {
        return Ok(None);
    }
    Ok(Some((card.score_points(&p)?, by)))
}

impl Case {
    /// The key no two open cases share: one open case per subject and kind.
    pub fn subject_key(kind: CaseKind, buyer: BuyerId, rid: Option<ReturnId>) -> String {
        let kind = kind.as_str();
        match rid {
            Some(r) => format!("{kind}:return:{}", r.0),
            None => format!("{kind}:buyer:{}", buyer.0),
        }
    }
}

/// One entry of a case's audit trail: who did what, when, and what they said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEvent {
    pub at: DateTime<Utc>,
    /// `buyer`, `merchant`, `reviewer:NAME` or `clock`.
    pub actor: String,
    /// `opened`, `responded`, `response_missed`, `claimed`, `released`, `lease_lapsed`,
    /// `breached`, `decided`, `closed`.
    pub what: String,
    pub statement: Option<String>,
    pub evidence: Vec<String>,
}

impl CaseEvent {
    fn new(at: DateTime<Utc>, actor: impl Into<String>, what: &str) -> CaseEvent {
        CaseEvent {
            at,
            actor: actor.into(),
            what: what.to_string(),
            statement: None,
            evidence: Vec::new(),
        }
    }
}

/// What a decision does to the money and the star, applied by the store in the same
/// transaction as the move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The return's settled outcome becomes `to` (the buyer's loss is gone).
    CorrectOutcome { return_id: ReturnId, to: Outcome },
    /// A person releases the return the rules refused: its address at once, and an
    /// advance on its tracking number by the ordinary rules (the buyer's limit and the
    /// day's budget, which no reviewer overrides).
    ReleaseByReviewer {
        return_id: ReturnId,
        reviewer: String,
    },
}

/// Why a case or a move is refused: the caller's mistake or a conflict with the case,
/// never a fault of the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseRefusal {
    #[error("{0}")]
    Invalid(String),
    #[error("return {0} was never decided")]
    UnknownReturn(u64),
    #[error("return {return_id} is buyer {owner}'s, not buyer {buyer}'s")]
    NotTheBuyers {
        return_id: u64,
        buyer: u64,
        owner: u64,
    },
    #[error("{0}")]
    NothingToContest(String),
    #[error("case {0} is already open on this subject")]
    AlreadyOpen(u64),
    #[error("case {0} does not exist")]
    UnknownCase(u64),
    #[error("case {case_id} is claimed by another reviewer until {lease_until}")]
    Claimed {
        case_id: u64,
        lease_until: DateTime<Utc>,
    },
    #[error("case {case_id} is not claimed by {reviewer}: claim it first")]
    NotYourClaim { case_id: u64, reviewer: String },
    #[error("case {case_id} was decided {verdict} already; another decision is refused")]
    AlreadyDecided { case_id: u64, verdict: &'static str },
    #[error("case {case_id} is {state}: {what} is not a move from there")]
    WrongState {
        case_id: u64,
        state: &'static str,
        what: &'static str,
    },
}

/// What the store knows of a case's subject, read in the transaction that opens it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectFacts {
    /// The return's buyer and order, if the return was decided.
    pub return_owner: Option<(BuyerId, OrderId)>,
    /// The return's settled outcome, if any.
    pub outcome: Option<Outcome>,
    /// Whether the return's decision refused instant release or the advance.
    pub refused: bool,
    /// An open case on the same subject.
    pub open_case: Option<u64>,
}

/// A request to open a case, parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub kind: CaseKind,
    pub buyer_id: BuyerId,
    pub return_id: Option<ReturnId>,
    pub order_id: Option<OrderId>,
    pub opened_by: Party,
    pub statement: String,
    pub evidence: Vec<String>,
    /// The reason a `rating` case contests, if any.
    pub contested: Option<Contested>,
}

/// The longest reason code a case may contest, in bytes.
const MAX_REASON_CODE_LEN: usize = 200;

/// Checks a statement and its evidence: not empty, at most
/// [`MAX_STATEMENT_CHARS`] characters, at most [`MAX_EVIDENCE`] links, each `https://`.
pub fn check_statement(statement: &str, evidence: &[String]) -> Result<(), CaseRefusal> {
    if statement.trim().is_empty() {
        return Err(CaseRefusal::Invalid("`statement` must not be empty".into()));
    }
    let chars = statement.chars().count();
    if chars > MAX_STATEMENT_CHARS {
        return Err(CaseRefusal::Invalid(format!(
            "`statement` has {chars} characters, more than {MAX_STATEMENT_CHARS}"
        )));
    }
    if evidence.len() > MAX_EVIDENCE {
        return Err(CaseRefusal::Invalid(format!(
            "`evidence` has {} links, more than {MAX_EVIDENCE}",
            evidence.len()
        )));
    }
    for (i, link) in evidence.iter().enumerate() {
        let ok = link.len() <= MAX_EVIDENCE_LEN
            && link
                .strip_prefix("https://")
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            && !link.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(CaseRefusal::Invalid(format!(
                "`evidence[{i}]` must be an https:// link of at most {MAX_EVIDENCE_LEN} bytes"
            )));
        }
    }
    Ok(())
}

/// Opens a case: checks the request against its subject and gives the new case (id
/// `case_id`, made by the store) and its first event.
pub fn open(
    case_id: u64,
    o: &Opening,
    facts: &SubjectFacts,
    deadlines: &CaseDeadlines,
    now: DateTime<Utc>,
) -> Result<(Case, Vec<CaseEvent>), CaseRefusal> {
    check_statement(&o.statement, &o.evidence)?;
    if let Some(open) = facts.open_case {
        return Err(CaseRefusal::AlreadyOpen(open));
    }
    let needs_return = matches!(o.kind, CaseKind::Outcome | CaseKind::Decision);
    if needs_return && o.return_id.is_none() {
        return Err(CaseRefusal::Invalid(
            "`return_id` is required for an outcome or decision case".into(),
        ));
    }
    let mut order_id = o.order_id;
    if let Some(rid) = o.return_id {
        let (owner, order) = facts
            .return_owner
            .ok_or(CaseRefusal::UnknownReturn(rid.0))?;
        if owner != o.buyer_id {
            return Err(CaseRefusal::NotTheBuyers {
                return_id: rid.0,
                buyer: o.buyer_id.0,
                owner: owner.0,
            });
        }
        order_id = Some(order);
    }
    match o.kind {
        CaseKind::Outcome if facts.outcome.is_none_or(|x| x == Outcome::Pending) => {
            return Err(CaseRefusal::NothingToContest(format!(
                "return {} has no settled outcome to contest",
                o.return_id.map_or(0, |r| r.0)
            )));
        }
        CaseKind::Decision if !facts.refused => {
            return Err(CaseRefusal::NothingToContest(format!(
                "return {} was released and advanced: there is no refusal to review",
                o.return_id.map_or(0, |r| r.0)
            )));
        }
        CaseKind::Decision | CaseKind::Rating if o.opened_by == Party::Merchant => {
            return Err(CaseRefusal::Invalid(
                "only the buyer opens a rating or decision case".into(),
            ));
        }
        _ => {}
    }
    if let Some(c) = &o.contested {
        if o.kind != CaseKind::Rating {
            return Err(CaseRefusal::Invalid(
                "`reason_code` is contested in a rating case only".into(),
            ));
        }
        let code = &c.reason_code;
        if code.is_empty() || code.len() > MAX_REASON_CODE_LEN || code.chars().any(char::is_control)
        {
            return Err(CaseRefusal::Invalid(format!(
                "`reason_code` must be a reason code of 1 to {MAX_REASON_CODE_LEN} bytes"
            )));
        }
    }
    // Only an outcome has another party to hear before a reviewer decides.
    let (state, respond_by) = match o.kind {
        CaseKind::Outcome => (CaseState::AwaitingResponse, Some(now + deadlines.respond)),
        _ => (CaseState::OpenForReview, None),
    };
    let case = Case {
        case_id,
        kind: o.kind,
        buyer_id: o.buyer_id,
        return_id: o.return_id,
        order_id,
        opened_by: o.opened_by,
        opened_at: now,
        respond_by,
        responded_at: None,
        decide_by: now + deadlines.decide(o.kind),
        breached: false,
        contested: o.contested.clone(),
        state,
    };
    let mut event = CaseEvent::new(now, o.opened_by.as_str(), "opened");
    event.statement = Some(o.statement.clone());
    event.evidence = o.evidence.clone();
    Ok((case, vec![event]))
}

/// A move on an open case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The other party answers, before `respond_by`.
    Respond {
        party: Party,
        statement: String,
        evidence: Vec<String>,
    },
    /// A reviewer takes (or renews) the lease.
    Claim { reviewer: String },
    /// The lease holder lets the case go back to the queue.
    Release { reviewer: String },
    /// The lease holder decides. `outcome`: for an `outcome` case the buyer won, what
    /// the return's outcome becomes (`received_ok` by default, or `merchant_fault`).
    Decide {
        reviewer: String,
        verdict: Verdict,
        note: String,
        outcome: Option<Outcome>,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Respond { .. } => "respond",
            Command::Claim { .. } => "claim",
            Command::Release { .. } => "release",
            Command::Decide { .. } => "decide",
        }
    }
}

/// What a move does: the case after it, the events to append, its effects, and
/// whether it repeated an earlier move (nothing new to write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stepped {
    pub case: Case,
    pub events: Vec<CaseEvent>,
    pub effects: Vec<Effect>,
    pub repeated: bool,
}

/// Moves `case` to `now` by the clock alone: a missed response turn opens it for
/// review, a lapsed lease puts it back in the queue, a passed `decide_by` marks it
/// breached. Returns the events of what time did.
pub fn tick(case: &mut Case, now: DateTime<Utc>) -> Vec<CaseEvent> {
    let mut events = Vec::new();
    if case.state == CaseState::AwaitingResponse
        && let Some(by) = case.respond_by
        && now > by
    {
        case.state = CaseState::OpenForReview;
        let mut e = CaseEvent::new(by, "clock", "response_missed");
        e.statement = Some(format!(
            "the {} did not answer by {by}: the opener's statement stands",
            case.opened_by.other().as_str()
        ));
        events.push(e);
    }
    if let CaseState::Claimed {
        reviewer,
        lease_until,
    } = &case.state
        && now > *lease_until
    {
        let mut e = CaseEvent::new(*lease_until, "clock", "lease_lapsed");
        e.statement = Some(format!("{reviewer}'s lease lapsed"));
        events.push(e);
        case.state = CaseState::OpenForReview;
    }
    if case.state.is_open() && !case.breached && now > case.decide_by {
        case.breached = true;
        events.push(CaseEvent::new(case.decide_by, "clock", "breached"));
    }
    events
}

/// Applies `cmd` to `case` at `now` (after [`tick`]), or refuses it.
pub fn step(
    case: &Case,
    cmd: &Command,
    deadlines: &CaseDeadlines,
    now: DateTime<Utc>,
) -> Result<Stepped, CaseRefusal> {
    let mut next = case.clone();
    let mut events = tick(&mut next, now);
    let wrong = |c: &Case| CaseRefusal::WrongState {
        case_id: c.case_id,
        state: c.state.name(),
        what: cmd.name(),
    };
    let mut effects = Vec::new();
    let mut repeated = false;
    match (cmd, &next.state) {
        (
            Command::Respond {
                party,
                statement,
                evidence,
            },
            CaseState::AwaitingResponse | CaseState::Claimed { .. },
        ) if next.responded_at.is_none() && next.respond_by.is_some_and(|by| now <= by) => {
            check_statement(statement, evidence)?;
            if *party != next.opened_by.other() {
                return Err(CaseRefusal::Invalid(format!(
                    "the response is the {}'s to give",
                    next.opened_by.other().as_str()
                )));
            }
            next.responded_at = Some(now);
            if next.state == CaseState::AwaitingResponse {
                next.state = CaseState::OpenForReview;
            }
            let mut e = CaseEvent::new(now, party.as_str(), "responded");
            e.statement = Some(statement.clone());
            e.evidence = evidence.clone();
            events.push(e);
        }
        // A reviewer may step in before the other party's turn is over (the platform's
        // intervention): the party may still answer until `respond_by`, and the trail
        // shows whether they did before the decision.
        (Command::Claim { reviewer }, CaseState::OpenForReview | CaseState::AwaitingResponse) => {
            check_reviewer(reviewer)?;
            next.state = CaseState::Claimed {
                reviewer: reviewer.clone(),
                lease_until: now + deadlines.lease,
            };
            events.push(CaseEvent::new(now, reviewer_actor(reviewer), "claimed"));
        }
        (
            Command::Claim { reviewer },
            CaseState::Claimed {
                reviewer: holder,
                lease_until,
            },
        ) => {
            if holder != reviewer {
                return Err(CaseRefusal::Claimed {
                    case_id: next.case_id,
                    lease_until: *lease_until,
                });
            }
            // The holder claims again: the lease is renewed.
            next.state = CaseState::Claimed {
                reviewer: reviewer.clone(),
                lease_until: now + deadlines.lease,
            };
            events.push(CaseEvent::new(now, reviewer_actor(reviewer), "claimed"));
        }
        (
            Command::Release { reviewer },
            CaseState::Claimed {
                reviewer: holder, ..
            },
        ) => {
            if holder != reviewer {
                return Err(CaseRefusal::NotYourClaim {
                    case_id: next.case_id,
                    reviewer: reviewer.clone(),
                });
            }
            next.state = CaseState::OpenForReview;
            events.push(CaseEvent::new(now, reviewer_actor(reviewer), "released"));
        }
        (
            Command::Decide {
                reviewer,
                verdict,
                note,
                outcome,
            },
            CaseState::Claimed {
                reviewer: holder, ..
            },
        ) => {
            if holder != reviewer {
                return Err(CaseRefusal::NotYourClaim {
                    case_id: next.case_id,
                    reviewer: reviewer.clone(),
                });
            }
            if note.trim().is_empty() || note.chars().count() > MAX_STATEMENT_CHARS {
                return Err(CaseRefusal::Invalid(format!(
                    "`note` must say why, in 1 to {MAX_STATEMENT_CHARS} characters"
                )));
            }
            let corrected = match (next.kind, verdict, outcome) {
                (CaseKind::Outcome, Verdict::BuyerWon, None) => Some(Outcome::ReceivedOk),
                (
                    CaseKind::Outcome,
                    Verdict::BuyerWon,
                    Some(o @ (Outcome::ReceivedOk | Outcome::MerchantFault)),
                ) => Some(*o),
                (_, _, Some(o)) => {
                    return Err(CaseRefusal::Invalid(format!(
                        "`outcome` {o} is not a correction: only an outcome case the buyer won is corrected, to received_ok or merchant_fault"
                    )));
                }
                _ => None,
            };
            if let (Some(to), Some(rid)) = (corrected, next.return_id) {
                effects.push(Effect::CorrectOutcome { return_id: rid, to });
            }
            if let (CaseKind::Decision, Verdict::BuyerWon, Some(rid)) =
                (next.kind, verdict, next.return_id)
            {
                effects.push(Effect::ReleaseByReviewer {
                    return_id: rid,
                    reviewer: reviewer.clone(),
                });
            }
            next.state = CaseState::Decided {
                verdict: *verdict,
                reviewer: reviewer.clone(),
                note: note.clone(),
                at: now,
                corrected_outcome: corrected,
            };
            let mut e = CaseEvent::new(now, reviewer_actor(reviewer), "decided");
            e.statement = Some(format!("{}: {note}", verdict.as_str()));
            events.push(e);
        }
        (
            Command::Decide {
                verdict,
                note,
                reviewer,
                outcome,
            },
            CaseState::Decided {
                verdict: v,
                note: n,
                reviewer: r,
                corrected_outcome,
                ..
            },
        ) => {
            // The same decision again (a retry) gets the same answer; another is refused.
            let same_outcome = outcome.is_none() || *outcome == *corrected_outcome;
            if verdict != v || note != n || reviewer != r || !same_outcome {
                return Err(CaseRefusal::AlreadyDecided {
                    case_id: next.case_id,
                    verdict: v.as_str(),
                });
            }
            repeated = true;
        }
        (
            Command::Decide { reviewer, .. },
            CaseState::OpenForReview | CaseState::AwaitingResponse,
        ) => {
            return Err(CaseRefusal::NotYourClaim {
                case_id: next.case_id,
                reviewer: reviewer.clone(),
            });
        }
        _ => return Err(wrong(&next)),
    }
    Ok(Stepped {
        case: next,
        events,
        effects,
        repeated,
    })
}

fn check_reviewer(name: &str) -> Result<(), CaseRefusal> {
    let ok = !name.trim().is_empty() && name.len() <= 100 && !name.chars().any(|c| c.is_control());
    if ok {
        Ok(())
    } else {
        Err(CaseRefusal::Invalid(
            "`reviewer` must be a name of 1 to 100 characters".into(),
        ))
    }
}

fn reviewer_actor(name: &str) -> String {
    format!("reviewer:{name}")
}

/// Ids of disputes exported from cases start here (2^62), apart from the ids a data
/// team's own `disputes` table uses, so that the two can be read together.
pub const CASE_DISPUTE_ID_BASE: u64 = 1 << 62;

/// A decided case in the shape of the contract's `disputes` table (spec §2), for the
/// next rating: a case the buyer won counts as a dispute the buyer won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeRow {
    pub dispute_id: u64,
    pub order_id: OrderId,
    pub buyer_id: BuyerId,
    pub opened_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// `buyer_won`, `merchant_won` or `split`.
    pub decision: &'static str,
    pub fraud_flag: bool,
}

impl DisputeRow {
    /// The decided `case` as a dispute; `None` while undecided, or for a case about no
    /// order (a rating case about the star as a whole): a dispute is about an order.
    pub fn of(case: &Case) -> Option<DisputeRow> {
        let CaseState::Decided { verdict, at, .. } = &case.state else {
            return None;
        };
        Some(DisputeRow {
            dispute_id: CASE_DISPUTE_ID_BASE + case.case_id,
            order_id: case.order_id?,
            buyer_id: case.buyer_id,
            opened_at: case.opened_at,
            decided_at: Some(*at),
            decision: verdict.as_str(),
            fraud_flag: false,
        })
    }
}

/// The queue's order: breached cases first, then the soonest `decide_by`, then the
/// oldest.
pub fn queue_order(a: &Case, b: &Case) -> std::cmp::Ordering {
    b.breached
        .cmp(&a.breached)
        .then(a.decide_by.cmp(&b.decide_by))
        .then(a.case_id.cmp(&b.case_id))
}

#[cfg(test)]
mod tests;
