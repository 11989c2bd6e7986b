//! Every state × command of the return's lifecycle, against the table of legal moves.

use super::*;
use chrono::TimeZone;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, hour, 0, 0).unwrap()
}

fn adv(t: &str) -> Advance {
    Advance {
        amount: "59.90".parse().unwrap(),
        tracking_number: t.into(),
    }
}

fn rec(state: ReturnState) -> ReturnRec {
    ReturnRec {
        buyer: BuyerId(7),
        order: OrderId(8),
        amount: "59.90".parse().unwrap(),
        star: Star::try_from(5u8).unwrap(),
        state,
    }
}

fn states() -> Vec<(&'static str, ReturnState)> {
    let settled = |corrected| ReturnState::Settled {
        advance: adv("SF1"),
        outcome: Outcome::ReceivedMismatch,
        at: at(1).timestamp_micros(),
        corrected,
    };
    vec![
        ("held", ReturnState::Held),
        ("released", ReturnState::Released),
        ("advanced", ReturnState::Advanced(adv("SF1"))),
        ("settled", settled(None)),
        ("corrected", settled(Some(Outcome::ReceivedOk))),
    ]
}

/// What a move did, in a word: the next state's name and whether it wrote anything,
/// or the refusal.
fn word<A>(r: Result<Moved<A>, Refusal>) -> String {
    match r {
        Ok(m) => {
            let name = match m.next {
                ReturnState::Held => "held",
                ReturnState::Released => "released",
                ReturnState::Advanced(_) => "advanced",
                ReturnState::Settled {
                    corrected: None, ..
                } => "settled",
                ReturnState::Settled { .. } => "corrected",
            };
            let wrote = if m.effects.is_empty() { "" } else { "+" };
            format!("{name}{wrote}")
        }
        Err(e) => format!(
            "refused:{}",
            format!("{e:?}").split([' ', '(']).next().unwrap()
        ),
    }
}

#[test]
fn every_state_and_command_moves_as_the_table_says() {
    let p = Policy::default();
    let view = |_: &ReturnRec| Ok::<_, Refusal>(LedgerView::default());
    let rid = ReturnId(1);
    // Columns: track SF1, track SF2, settle mismatch at 1h, settle ok at 1h, settle
    // mismatch at 2h, release, correct to ok, correct to merchant_fault.
    let table: [(&str, [&str; 8]); 5] = [
        (
            "held",
            [
                "held+",
                "held+",
                "refused:NotAdvanced",
                "refused:NotAdvanced",
                "refused:NotAdvanced",
                "released+",
                "refused:NotSettled",
                "refused:NotSettled",
            ],
        ),
        (
            "released",
            [
                "advanced+",
                "advanced+",
                "refused:NotAdvanced",
                "refused:NotAdvanced",
                "refused:NotAdvanced",
                "released",
                "refused:NotSettled",
                "refused:NotSettled",
            ],
        ),
        (
            "advanced",
            [
                "advanced",
                "refused:TrackingConflict",
                "settled+",
                "settled+",
                "settled+",
                "advanced",
                "refused:NotSettled",
                "refused:NotSettled",
            ],
        ),
        (
            "settled",
            [
                "settled",
                "refused:TrackingConflict",
                "settled",
                "refused:OutcomeConflict",
                "refused:OutcomeAtConflict",
                "settled",
                "corrected+",
                "corrected+",
            ],
        ),
        (
            "corrected",
            [
                "corrected",
                "refused:TrackingConflict",
                "corrected",
                "refused:OutcomeConflict",
                "refused:OutcomeAtConflict",
                "corrected",
                "corrected",
                "refused:CorrectionConflict",
            ],
        ),
    ];
    for ((name, state), (row, want)) in states().into_iter().zip(table) {
        assert_eq!(name, row);
        let r = rec(state);
        let got = [
            word(track_step(rid, &r, "SF1", None, &p, view)),
            word(track_step(rid, &r, "SF2", None, &p, view)),
            word(settle_step(rid, Some(&r), Outcome::ReceivedMismatch, at(1))),
            word(settle_step(rid, Some(&r), Outcome::ReceivedOk, at(1))),
            word(settle_step(rid, Some(&r), Outcome::ReceivedMismatch, at(2))),
            word(Ok::<_, Refusal>(release_step(&r, "ana"))),
            word(correct_step(rid, &r, Outcome::ReceivedOk)),
            word(correct_step(rid, &r, Outcome::MerchantFault)),
        ];
        assert_eq!(
            got.map(|s| s.to_string()),
            want.map(String::from),
            "from {name}"
        );
    }
}

#[test]
fn a_held_return_refuses_a_tracking_number_as_not_instant_and_records_why() {
    let r = rec(ReturnState::Held);
    let m = track_step(ReturnId(1), &r, "SF1", None, &Policy::default(), |_| {
        Ok::<_, Refusal>(LedgerView::default())
    })
    .unwrap();
    assert_eq!(
        m.answer,
        TrackStep::Refuse {
            reasons: vec![ReasonCode::NotInstant]
        }
    );
    assert_eq!(
        m.effects,
        vec![Effect::TrackingRefused {
            tracking: "SF1".into(),
            reasons: vec![ReasonCode::NotInstant]
        }]
    );
}

#[test]
fn pending_and_unknown_returns_are_refused_before_anything_is_read() {
    assert_eq!(
        settle_step(ReturnId(3), None, Outcome::Pending, at(1)),
        Err(Refusal::PendingOutcome)
    );
    assert_eq!(
        settle_step(ReturnId(3), None, Outcome::ReceivedOk, at(1)),
        Err(Refusal::UnknownReturn(3))
    );
}

#[test]
fn a_correction_says_whether_the_loss_went_with_it() {
    let r = rec(states().remove(3).1);
    let m = correct_step(ReturnId(1), &r, Outcome::ReceivedOk).unwrap();
    assert!(matches!(
        m.effects[..],
        [Effect::OutcomeCorrected {
            loss_changed: true,
            ..
        }]
    ));
    assert_eq!(m.next.outcome().map(|(o, _)| o), Some(Outcome::ReceivedOk));
}

#[test]
fn rows_that_fit_no_state_are_an_invariant_broken() {
    let ok = Some((Outcome::ReceivedOk, 1));
    assert!(ReturnState::from_rows(false, None, None, None).is_ok());
    assert!(ReturnState::from_rows(true, Some(adv("SF")), ok, None).is_ok());
    assert!(
        ReturnState::from_rows(true, None, ok, None).is_err(),
        "outcome, no advance"
    );
    assert!(ReturnState::from_rows(false, Some(adv("SF")), None, None).is_err());
    assert!(
        ReturnState::from_rows(true, Some(adv("SF")), None, Some(Outcome::ReceivedOk)).is_err(),
        "a correction with no outcome"
    );
}
