//! The case machine against a plain reference model, on random sequences of moves and
//! of the clock; and the edges a person meets, one by one.

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap()
}

fn opening(kind: CaseKind, by: Party) -> Opening {
    Opening {
        kind,
        buyer_id: BuyerId(7),
        return_id: Some(ReturnId(41)),
        order_id: None,
        opened_by: by,
        statement: "The parcel left sealed.".into(),
        evidence: vec!["https://example.com/photo.jpg".into()],
        contested: None,
    }
}

fn settled_facts() -> SubjectFacts {
    SubjectFacts {
        return_owner: Some((BuyerId(7), OrderId(5))),
        outcome: Some(Outcome::ReceivedMismatch),
        refused: false,
        open_case: None,
    }
}

#[test]
fn an_outcome_case_waits_for_the_merchant_then_a_reviewer_decides_it() {
    let d = CaseDeadlines::default();
    let (case, events) = open(
        1,
        &opening(CaseKind::Outcome, Party::Buyer),
        &settled_facts(),
        &d,
        t0(),
    )
    .unwrap();
    assert_eq!(case.state, CaseState::AwaitingResponse);
    assert_eq!(case.respond_by, Some(t0() + Duration::hours(48)));
    assert_eq!(case.decide_by, t0() + Duration::hours(72));
    assert_eq!(case.order_id, Some(OrderId(5)));
    assert_eq!(events[0].what, "opened");
    // A reviewer cannot decide before claiming; the buyer cannot answer their own case.
    let decide = |r: &str| Command::Decide {
        reviewer: r.into(),
        verdict: Verdict::BuyerWon,
        note: "sealed box on the courier's photo".into(),
        outcome: None,
    };
    assert!(matches!(
        step(&case, &decide("li"), &d, t0()),
        Err(CaseRefusal::NotYourClaim { .. })
    ));
    let buyer_again = Command::Respond {
        party: Party::Buyer,
        statement: "x".into(),
        evidence: vec![],
    };
    assert!(matches!(
        step(&case, &buyer_again, &d, t0()),
        Err(CaseRefusal::Invalid(_))
    ));
    // The merchant answers; two reviewers race for it; the holder decides.
    let merchant = Command::Respond {
        party: Party::Merchant,
        statement: "It was empty.".into(),
        evidence: vec![],
    };
    let s = step(&case, &merchant, &d, t0() + Duration::hours(1)).unwrap();
    assert_eq!(s.case.state, CaseState::OpenForReview);
    let s = step(
        &s.case,
        &Command::Claim {
            reviewer: "li".into(),
        },
        &d,
        t0() + Duration::hours(2),
    )
    .unwrap();
    let other = step(
        &s.case,
        &Command::Claim {
            reviewer: "chen".into(),
        },
        &d,
        t0() + Duration::hours(2),
    );
    assert!(
        matches!(other, Err(CaseRefusal::Claimed { .. })),
        "{other:?}"
    );
    assert!(matches!(
        step(&s.case, &decide("chen"), &d, t0() + Duration::hours(2)),
        Err(CaseRefusal::NotYourClaim { .. })
    ));
    let decided = step(&s.case, &decide("li"), &d, t0() + Duration::hours(3)).unwrap();
    assert_eq!(
        decided.effects,
        vec![Effect::CorrectOutcome {
            return_id: ReturnId(41),
            to: Outcome::ReceivedOk
        }]
    );
    assert_eq!(decided.case.state.verdict(), Some(Verdict::BuyerWon));
    // The same decision again: the same answer, nothing new. Another: refused.
    let again = step(&decided.case, &decide("li"), &d, t0() + Duration::hours(4)).unwrap();
    assert!(again.repeated && again.effects.is_empty() && again.events.is_empty());
    let other = Command::Decide {
        reviewer: "li".into(),
        verdict: Verdict::MerchantWon,
        note: "n".into(),
        outcome: None,
    };
    assert!(matches!(
        step(&decided.case, &other, &d, t0()),
        Err(CaseRefusal::AlreadyDecided { .. })
    ));
}

#[test]
fn a_missed_turn_a_lapsed_lease_and_a_passed_deadline_move_the_case_by_the_clock() {
    let d = CaseDeadlines::default();
    let (case, _) = open(
        1,
        &opening(CaseKind::Outcome, Party::Buyer),
        &settled_facts(),
        &d,
        t0(),
    )
    .unwrap();
    // The merchant misses their turn: the buyer's statement stands, the case is open.
    let mut c = case.clone();
    let events = tick(&mut c, t0() + Duration::hours(49));
    assert_eq!(c.state, CaseState::OpenForReview);
    assert_eq!(events[0].what, "response_missed");
    let late = Command::Respond {
        party: Party::Merchant,
        statement: "late".into(),
        evidence: vec![],
    };
    assert!(matches!(
        step(&c, &late, &d, t0() + Duration::hours(49)),
        Err(CaseRefusal::WrongState { .. })
    ));
    // A claim lapses after the lease; someone else may claim then.
    let s = step(
        &c,
        &Command::Claim {
            reviewer: "li".into(),
        },
        &d,
        t0() + Duration::hours(50),
    )
    .unwrap();
    let s2 = step(
        &s.case,
        &Command::Claim {
            reviewer: "chen".into(),
        },
        &d,
        t0() + Duration::hours(51) + Duration::minutes(1),
    )
    .unwrap();
    assert!(s2.events.iter().any(|e| e.what == "lease_lapsed"));
    // Past decide_by: breached, and first in the queue.
    let mut late_case = s2.case.clone();
    tick(&mut late_case, t0() + Duration::hours(73));
    assert!(late_case.breached);
    let mut fresh = case.clone();
    fresh.case_id = 2;
    fresh.decide_by = t0() + Duration::hours(1);
    assert_eq!(queue_order(&late_case, &fresh), std::cmp::Ordering::Less);
}

#[test]
fn bad_openings_are_refused_naming_what_is_wrong() {
    let d = CaseDeadlines::default();
    let mut o = opening(CaseKind::Outcome, Party::Buyer);
    o.statement = "x".repeat(MAX_STATEMENT_CHARS + 1);
    assert!(
        matches!(open(1, &o, &settled_facts(), &d, t0()), Err(CaseRefusal::Invalid(m)) if m.contains("4000"))
    );
    let mut o = opening(CaseKind::Outcome, Party::Buyer);
    o.evidence = vec!["http://example.com/a".into()];
    assert!(
        matches!(open(1, &o, &settled_facts(), &d, t0()), Err(CaseRefusal::Invalid(m)) if m.contains("evidence[0]"))
    );
    let mut o = opening(CaseKind::Outcome, Party::Buyer);
    o.evidence = vec!["https://example.com/a".into(); 11];
    assert!(open(1, &o, &settled_facts(), &d, t0()).is_err());
    let o = opening(CaseKind::Outcome, Party::Buyer);
    assert_eq!(
        open(1, &o, &SubjectFacts::default(), &d, t0()).err(),
        Some(CaseRefusal::UnknownReturn(41))
    );
    let other_buyers = SubjectFacts {
        return_owner: Some((BuyerId(8), OrderId(5))),
        ..settled_facts()
    };
    assert!(matches!(
        open(1, &o, &other_buyers, &d, t0()),
        Err(CaseRefusal::NotTheBuyers { .. })
    ));
    let unsettled = SubjectFacts {
        outcome: None,
        ..settled_facts()
    };
    assert!(matches!(
        open(1, &o, &unsettled, &d, t0()),
        Err(CaseRefusal::NothingToContest(_))
    ));
    let busy = SubjectFacts {
        open_case: Some(9),
        ..settled_facts()
    };
    assert_eq!(
        open(1, &o, &busy, &d, t0()).err(),
        Some(CaseRefusal::AlreadyOpen(9))
    );
    let released = SubjectFacts {
        refused: false,
        ..settled_facts()
    };
    assert!(matches!(
        open(
            1,
            &opening(CaseKind::Decision, Party::Buyer),
            &released,
            &d,
            t0()
        ),
        Err(CaseRefusal::NothingToContest(_))
    ));
}

/// A plain reference model of one case, written without the machine's types.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Awaiting,
    Open,
    Claimed(usize, DateTime<Utc>),
    Decided(usize, usize),
}

#[derive(Debug, Clone)]
enum Move {
    Respond(bool),
    Claim(usize),
    Release(usize),
    Decide(usize, usize),
    Wait(i64),
}

fn moves() -> impl Strategy<Value = Move> {
    prop_oneof![
        any::<bool>().prop_map(Move::Respond),
        (0..3usize).prop_map(Move::Claim),
        (0..3usize).prop_map(Move::Release),
        (0..3usize, 0..3usize).prop_map(|(r, v)| Move::Decide(r, v)),
        (1..40i64).prop_map(Move::Wait),
    ]
}

const REVIEWERS: [&str; 3] = ["li", "chen", "wang"];
const VERDICTS: [Verdict; 3] = [Verdict::BuyerWon, Verdict::MerchantWon, Verdict::Split];

proptest! {
    /// Random responses, claims, releases, decisions and waits (in hours) against the
    /// reference model: the same moves are accepted, the same state results, the
    /// clock's moves happen when they are due, a decided case never changes, and the
    /// audit trail only grows.
    #[test]
    fn the_case_machine_moves_as_the_reference_model(
        kind in prop_oneof![Just(CaseKind::Outcome), Just(CaseKind::Rating), Just(CaseKind::Decision)],
        moves in proptest::collection::vec(moves(), 1..40),
    ) {
        let d = CaseDeadlines::default();
        let facts = SubjectFacts { refused: true, ..settled_facts() };
        let (mut case, mut trail) = open(1, &opening(kind, Party::Buyer), &facts, &d, t0()).unwrap();
        let mut phase = if kind == CaseKind::Outcome { Phase::Awaiting } else { Phase::Open };
        let mut responded = false;
        let mut now = t0();
        let respond_by = t0() + Duration::hours(48);
        let decide_by = case.decide_by;
        for m in moves {
            // The reference model's clock.
            if phase == Phase::Awaiting && now > respond_by { phase = Phase::Open; }
            if let Phase::Claimed(_, until) = phase && now > until { phase = Phase::Open; }
            let cmd = match &m {
                Move::Respond(merchant) => Command::Respond {
                    party: if *merchant { Party::Merchant } else { Party::Buyer },
                    statement: "answer".into(),
                    evidence: vec![],
                },
                Move::Claim(r) => Command::Claim { reviewer: REVIEWERS[*r].into() },
                Move::Release(r) => Command::Release { reviewer: REVIEWERS[*r].into() },
                Move::Decide(r, v) => Command::Decide {
                    reviewer: REVIEWERS[*r].into(),
                    verdict: VERDICTS[*v],
                    note: "why".into(),
                    outcome: None,
                },
                Move::Wait(h) => {
                    now += Duration::hours(*h);
                    continue;
                }
            };
            let may_answer = kind == CaseKind::Outcome && !responded && now <= respond_by;
            let expect: Option<Phase> = match (&m, &phase) {
                (Move::Respond(true), Phase::Awaiting) if may_answer => Some(Phase::Open),
                (Move::Respond(true), Phase::Claimed(..)) if may_answer => Some(phase.clone()),
                (Move::Claim(r), Phase::Open | Phase::Awaiting) => Some(Phase::Claimed(*r, now + Duration::hours(1))),
                (Move::Claim(r), Phase::Claimed(h, _)) if h == r => Some(Phase::Claimed(*r, now + Duration::hours(1))),
                (Move::Release(r), Phase::Claimed(h, _)) if h == r => Some(Phase::Open),
                (Move::Decide(r, v), Phase::Claimed(h, _)) if h == r => Some(Phase::Decided(*r, *v)),
                (Move::Decide(r, v), Phase::Decided(h, w)) if h == r && v == w => Some(phase.clone()),
                _ => None,
            };
            let got = step(&case, &cmd, &d, now);
            match (expect, got) {
                (Some(p), Ok(s)) => {
                    prop_assert!(s.events.iter().all(|e| e.at <= now));
                    trail.extend(s.events.clone());
                    let state_matches = match (&p, &s.case.state) {
                        (Phase::Open, CaseState::OpenForReview) => true,
                        (Phase::Claimed(r, until), CaseState::Claimed { reviewer, lease_until }) => reviewer == REVIEWERS[*r] && lease_until == until,
                        (Phase::Decided(r, v), CaseState::Decided { reviewer, verdict, .. }) => reviewer == REVIEWERS[*r] && *verdict == VERDICTS[*v],
                        _ => false,
                    };
                    prop_assert!(state_matches, "{:?} vs {:?}", p, s.case.state);
                    let corrects = kind != CaseKind::Rating && matches!(p, Phase::Decided(_, 0)) && !s.repeated;
                    prop_assert_eq!(!s.effects.is_empty(), corrects);
                    if matches!(m, Move::Respond(true)) {
                        responded = true;
                    }
                    phase = p;
                    case = s.case;
                }
                (None, Err(_)) => {}
                (e, g) => prop_assert!(false, "model {:?}, machine {:?} for {:?} in {:?}", e, g, m, phase),
            }
            if !matches!(phase, Phase::Decided(..)) {
                let mut probe = case.clone();
                tick(&mut probe, now);
                prop_assert_eq!(probe.breached, now > decide_by);
            }
        }
        prop_assert!(trail.windows(2).all(|w| w[0].at <= w[1].at || w[1].actor == "clock"));
    }
}

#[test]
fn a_rating_case_the_buyer_won_strikes_its_contested_reason_and_no_other_case_does() {
    let card = crate::scoring::tiny_model().check().unwrap();
    let d = CaseDeadlines::default();
    let mut o = opening(CaseKind::Rating, Party::Buyer);
    o.return_id = None;
    o.contested = Some(Contested {
        reason_code: "losses".into(),
        points: 150,
    });
    let (case, _) = open(1, &o, &SubjectFacts::default(), &d, t0()).unwrap();
    let claim = Command::Claim {
        reviewer: "li".into(),
    };
    let claimed = step(&case, &claim, &d, t0()).unwrap().case;
    let decide = |verdict| Command::Decide {
        reviewer: "li".into(),
        verdict,
        note: "the losses were the courier's".into(),
        outcome: None,
    };
    let won = step(&claimed, &decide(Verdict::BuyerWon), &d, t0())
        .unwrap()
        .case;
    let strike = Strike::of(&won).expect("a won rating case on a reason strikes");
    assert_eq!((strike.case_id, strike.points_at_open), (1, 150));
    let points = card.points_numeric(&[2.0, 40.0, 0.0]).unwrap();
    let (scored, by) = corrected(&card, &points, std::slice::from_ref(&strike))
        .unwrap()
        .unwrap();
    assert_eq!(by, vec![1]);
    assert_eq!(scored, card.score_numeric(&[0.0, 40.0, 0.0]).unwrap());
    // Lost, or about the star as a whole: nothing is struck.
    let lost = step(&claimed, &decide(Verdict::MerchantWon), &d, t0())
        .unwrap()
        .case;
    assert_eq!(Strike::of(&lost), None);
    let mut whole = won.clone();
    whole.contested = None;
    assert_eq!(Strike::of(&whole), None);
    assert_eq!(corrected(&card, &points, &[]).unwrap(), None);
    // A contested reason belongs to a rating case only, and is a real code.
    let mut wrong = opening(CaseKind::Outcome, Party::Buyer);
    wrong.contested = o.contested.clone();
    let facts = SubjectFacts {
        return_owner: Some((BuyerId(7), OrderId(9))),
        outcome: Some(Outcome::ReceivedMismatch),
        ..SubjectFacts::default()
    };
    assert!(matches!(
        open(2, &wrong, &facts, &d, t0()),
        Err(CaseRefusal::Invalid(_))
    ));
    let mut empty = o.clone();
    empty.contested = Some(Contested {
        reason_code: String::new(),
        points: 0,
    });
    assert!(open(3, &empty, &SubjectFacts::default(), &d, t0()).is_err());
}
