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
        merchant: MerchantId(1),
        amount: "59.90".parse().unwrap(),
        requested_at: at(0),
        star: Star::try_from(5u8).unwrap(),
        refund_only_offered: false,
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
                ReturnState::Kept { .. } => "kept",
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
            word(track_step(rid, &r, "SF1", at(1), None, &p, view)),
            word(track_step(rid, &r, "SF2", at(1), None, &p, view)),
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
    let m = track_step(
        ReturnId(1),
        &r,
        "SF1",
        at(1),
        None,
        &Policy::default(),
        |_| Ok::<_, Refusal>(LedgerView::default()),
    )
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
    assert!(ReturnState::from_rows(None, false, None, None, None).is_ok());
    assert!(ReturnState::from_rows(None, true, Some(adv("SF")), ok, None).is_ok());
    assert!(
        ReturnState::from_rows(None, true, None, ok, None).is_err(),
        "outcome, no advance"
    );
    assert!(ReturnState::from_rows(None, false, Some(adv("SF")), None, None).is_err());
    assert!(
        ReturnState::from_rows(None, true, Some(adv("SF")), None, Some(Outcome::ReceivedOk))
            .is_err(),
        "a correction with no outcome"
    );
}

#[test]
fn times_before_the_return_was_requested_are_refused_naming_the_field() {
    let r = rec(ReturnState::Released);
    let early = at(0) - chrono::Duration::seconds(1);
    let view = |_: &ReturnRec| Ok::<_, Refusal>(LedgerView::default());
    let p = Policy::default();
    assert_eq!(
        track_step(ReturnId(1), &r, "SF1", early, None, &p, view),
        Err(Refusal::BeforeRequest {
            return_id: 1,
            field: "shipped_at"
        })
    );
    let r = rec(ReturnState::Advanced(adv("SF1")));
    assert_eq!(
        settle_step(ReturnId(1), Some(&r), Outcome::ReceivedOk, early),
        Err(Refusal::BeforeRequest {
            return_id: 1,
            field: "at"
        })
    );
    assert!(settle_step(ReturnId(1), Some(&r), Outcome::ReceivedOk, at(0)).is_ok());
}

#[test]
fn keep_moves_an_offered_return_to_kept_once_and_refuses_every_other_state() {
    let p = Policy::default();
    let view = |_: &ReturnRec| Ok::<_, Refusal>(LedgerView::default());
    let rid = ReturnId(1);
    let offered = |state| ReturnRec {
        refund_only_offered: true,
        ..rec(state)
    };
    let kept = ReturnState::Kept {
        amount: "59.90".parse().unwrap(),
        at: at(2).timestamp_micros(),
    };
    // (state, offered, a tracking number given) → keep's answer.
    let table = [
        (ReturnState::Held, true, false, "kept+"),
        (ReturnState::Released, true, false, "kept+"),
        (
            ReturnState::Held,
            false,
            false,
            "refused:NoRefundWithoutReturnOffer",
        ),
        (
            ReturnState::Released,
            false,
            false,
            "refused:NoRefundWithoutReturnOffer",
        ),
        (ReturnState::Released, true, true, "refused:ParcelOnItsWay"),
        (
            ReturnState::Advanced(adv("SF1")),
            true,
            true,
            "refused:ParcelOnItsWay",
        ),
        (states().remove(3).1, true, true, "refused:ParcelOnItsWay"),
        (kept.clone(), true, false, "kept"),
    ];
    for (state, offer, tracked, want) in table {
        let r = if offer {
            offered(state.clone())
        } else {
            rec(state.clone())
        };
        let got = word(keep_step(rid, &r, tracked, &p, at(2), view));
        assert_eq!(
            got, want,
            "keep from {state:?} (offered {offer}, tracked {tracked})"
        );
    }
    // Once kept, the parcel never follows and no outcome settles it.
    let r = offered(kept);
    assert_eq!(
        word(track_step(rid, &r, "SF1", at(3), None, &p, view)),
        "refused:RefundedWithoutReturn"
    );
    assert_eq!(
        word(settle_step(rid, Some(&r), Outcome::ReceivedOk, at(3))),
        "refused:RefundedWithoutReturn"
    );
    assert_eq!(
        r.state.outcome().map(|(o, _)| o),
        Some(Outcome::RefundedWithoutReturn)
    );
}

#[test]
fn keep_checks_the_caps_again_and_charges_the_refund_in_the_same_move() {
    let p = Policy::default();
    let r = ReturnRec {
        refund_only_offered: true,
        amount: "29.00".parse().unwrap(),
        ..rec(ReturnState::Released)
    };
    let full = |_: &ReturnRec| {
        Ok::<_, Refusal>(LedgerView {
            refund_only_30_days: "174.00".parse().unwrap(),
            ..LedgerView::default()
        })
    };
    match keep_step(ReturnId(1), &r, false, &p, at(2), full) {
        Err(Refusal::RefundOnlyCaps { reasons, .. }) => {
            assert_eq!(reasons[0].code(), "refund_only_buyer_cap")
        }
        other => panic!("{other:?}"),
    }
    let spent = |_: &ReturnRec| {
        Ok::<_, Refusal>(LedgerView {
            refund_only_today: p.refund_only.daily_budget,
            ..LedgerView::default()
        })
    };
    assert!(matches!(
        keep_step(ReturnId(1), &r, false, &p, at(2), spent),
        Err(Refusal::RefundOnlyCaps { .. })
    ));
    let m = keep_step(ReturnId(1), &r, false, &p, at(2), |_| {
        Ok::<_, Refusal>(LedgerView::default())
    })
    .unwrap();
    assert_eq!(
        m.effects,
        vec![Effect::Kept {
            buyer: BuyerId(7),
            amount: "29.00".parse().unwrap(),
            at: at(2)
        }]
    );
    assert_eq!(
        m.answer,
        KeepStep::Keep {
            amount: "29.00".parse().unwrap()
        }
    );
}

#[test]
fn a_merchants_rules_hold_the_advance_when_the_tracking_number_comes_later() {
    let mut p = Policy::default();
    let file: crate::policy::PolicyFile = toml::from_str(&format!(
        "{}\n[merchants.1]\nadvances = false\n[merchants.2]\nadvance_limit = \"50.00\"\n",
        crate::policy::DEFAULT_POLICY_TOML.replace("[merchants]\n", "")
    ))
    .unwrap();
    p = Policy {
        merchant_rules: file.check("test").unwrap().merchant_rules,
        ..p
    };
    let view = |_: &ReturnRec| Ok::<_, Refusal>(LedgerView::default());
    let codes = |merchant: u64| {
        let r = ReturnRec {
            merchant: MerchantId(merchant),
            ..rec(ReturnState::Released)
        };
        match track_step(ReturnId(1), &r, "SF1", at(1), None, &p, view)
            .unwrap()
            .answer
        {
            TrackStep::Refuse { reasons } => reasons.iter().map(|c| c.code()).collect(),
            other => vec![format!("{other:?}").leak() as &str],
        }
    };
    assert_eq!(codes(1), vec!["merchant_rule"]);
    assert_eq!(codes(2), vec!["exposure_limit", "merchant_rule"]);
    assert!(codes(3)[0].starts_with("Advance"), "{:?}", codes(3));
}
