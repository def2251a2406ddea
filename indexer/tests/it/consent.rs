//! `check_consent` against the rules of patient-consent's `check-consent`
//! (contracts/contracts/patient-consent.clar): for each synthetic history,
//! the index must answer the contract's `(ok method)` or `(err code)`.
//!
//! Every history is: genesis (burn 100) credentials responder `R` and
//! registers providers `V` and `R`; block 1 (burn 101) registers patient
//! `P`; block 2 (burn 102) runs the case's setup; block 3, the tip, is at
//! the case's `now`. `Q` is never registered.

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::DataType;
use medanchor_indexer::ConsentReader;

use crate::support::{config, principal, BlockBuilder, Chain};

/// `(ok u0)` self, `(ok u1)` consent, `(ok u2)` emergency.
const SELF: Result<u8, u32> = Ok(0);
const CONSENT: Result<u8, u32> = Ok(1);
const EMERGENCY: Result<u8, u32> = Ok(2);
const PATIENT_NOT_FOUND: Result<u8, u32> = Err(101);
const INVALID_DATA_TYPE: Result<u8, u32> = Err(104);
const NO_CONSENT: Result<u8, u32> = Err(107);
const CONSENT_EXPIRED: Result<u8, u32> = Err(108);
const CONSENT_REVOKED: Result<u8, u32> = Err(109);
const PAUSED: Result<u8, u32> = Err(110);
const DECEASED: Result<u8, u32> = Err(111);
const EMERGENCY_EXPIRED: Result<u8, u32> = Err(115);
const ENHANCED: Result<u8, u32> = Err(116);

/// Who asks or is asked about.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// The registered patient.
    P,
    /// A provider (never a responder).
    V,
    /// A credentialed emergency responder.
    R,
    /// A principal never registered.
    Q,
}

use Who::{P, Q, R, V};

fn who(w: Who) -> Principal {
    principal(match w {
        P => "consent-patient",
        V => "consent-provider",
        R => "consent-responder",
        Q => "consent-stranger",
    })
}

/// Data type codes (the API takes any u8; 0 and 9+ are invalid here).
const BASIC: u8 = 1;
const HISTORY: u8 = 2;
const LAB: u8 = 3;
const TREATMENT: u8 = 4;
const MENTAL: u8 = 5;
const GENETIC: u8 = 6;
const FINANCIAL: u8 = 7;
const CONTACTS: u8 = 8;

/// The burn height an override started at block 2 expires at by default.
const OVERRIDE_END: u64 = 102 + 432;

struct Case {
    name: &'static str,
    /// Events of block 2 (burn 102).
    setup: fn(&mut BlockBuilder),
    /// Burn height of the tip.
    now: u64,
    /// (patient, accessor, data type, expected).
    checks: &'static [(Who, Who, u8, Result<u8, u32>)],
}

fn nothing(_: &mut BlockBuilder) {}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "self access, enhanced types included",
            setup: nothing,
            now: 105,
            checks: &[(P, P, LAB, SELF), (P, P, MENTAL, SELF), (P, P, GENETIC, SELF), (P, P, CONTACTS, SELF)],
        },
        Case {
            name: "no consent",
            setup: nothing,
            now: 105,
            checks: &[(P, V, LAB, NO_CONSENT), (P, R, LAB, NO_CONSENT)],
        },
        Case {
            name: "specific grant",
            setup: |b| b.grant(&who(P), &who(V), DataType::LabResults, None),
            now: 105,
            checks: &[(P, V, LAB, CONSENT), (P, V, HISTORY, NO_CONSENT), (P, R, LAB, NO_CONSENT)],
        },
        Case {
            name: "broad grant covers every standard type",
            setup: |b| b.grant(&who(P), &who(V), DataType::AllStandard, None),
            now: 105,
            checks: &[
                (P, V, BASIC, CONSENT),
                (P, V, HISTORY, CONSENT),
                (P, V, LAB, CONSENT),
                (P, V, TREATMENT, CONSENT),
                (P, V, FINANCIAL, CONSENT),
                (P, V, CONTACTS, CONSENT),
            ],
        },
        Case {
            name: "broad grant does not cover mental health or genetic",
            setup: |b| b.grant(&who(P), &who(V), DataType::AllStandard, None),
            now: 105,
            checks: &[(P, V, MENTAL, NO_CONSENT), (P, V, GENETIC, NO_CONSENT)],
        },
        Case {
            name: "enhanced types granted by name",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::AllStandard, None);
                b.grant(&who(P), &who(V), DataType::Genetic, None);
            },
            now: 105,
            checks: &[(P, V, GENETIC, CONSENT), (P, V, MENTAL, NO_CONSENT), (P, V, LAB, CONSENT)],
        },
        Case {
            name: "grant one block before its expiry",
            setup: |b| b.grant(&who(P), &who(V), DataType::LabResults, Some(110)),
            now: 109,
            checks: &[(P, V, LAB, CONSENT)],
        },
        Case {
            name: "grant at exactly its expiry burn height",
            setup: |b| b.grant(&who(P), &who(V), DataType::LabResults, Some(110)),
            now: 110,
            checks: &[(P, V, LAB, CONSENT_EXPIRED)],
        },
        Case {
            name: "grant after its expiry",
            setup: |b| b.grant(&who(P), &who(V), DataType::LabResults, Some(110)),
            now: 111,
            checks: &[(P, V, LAB, CONSENT_EXPIRED)],
        },
        Case {
            name: "expired broad grant, no specific one",
            setup: |b| b.grant(&who(P), &who(V), DataType::AllStandard, Some(110)),
            now: 110,
            checks: &[(P, V, LAB, CONSENT_EXPIRED), (P, V, MENTAL, NO_CONSENT)],
        },
        Case {
            name: "revoked",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::LabResults, None);
                b.revoke(&who(P), &who(V), DataType::LabResults);
            },
            now: 105,
            checks: &[(P, V, LAB, CONSENT_REVOKED)],
        },
        Case {
            name: "revoked broad grant, no specific one",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::AllStandard, None);
                b.revoke(&who(P), &who(V), DataType::AllStandard);
            },
            now: 105,
            checks: &[(P, V, LAB, CONSENT_REVOKED)],
        },
        Case {
            name: "revoked specific grant, broad grant in force",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::LabResults, None);
                b.revoke(&who(P), &who(V), DataType::LabResults);
                b.grant(&who(P), &who(V), DataType::AllStandard, None);
            },
            now: 105,
            checks: &[(P, V, LAB, CONSENT)],
        },
        Case {
            // Neither allows: the specific grant's reason wins.
            name: "revoked specific grant, expired broad grant",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::LabResults, None);
                b.revoke(&who(P), &who(V), DataType::LabResults);
                b.grant(&who(P), &who(V), DataType::AllStandard, Some(110));
            },
            now: 110,
            checks: &[(P, V, LAB, CONSENT_REVOKED), (P, V, BASIC, CONSENT_EXPIRED)],
        },
        Case {
            name: "expired specific grant, revoked broad grant",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::LabResults, Some(110));
                b.grant(&who(P), &who(V), DataType::AllStandard, None);
                b.revoke(&who(P), &who(V), DataType::AllStandard);
            },
            now: 110,
            checks: &[(P, V, LAB, CONSENT_EXPIRED), (P, V, BASIC, CONSENT_REVOKED)],
        },
        Case {
            name: "granted again after a revocation",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::LabResults, None);
                b.revoke(&who(P), &who(V), DataType::LabResults);
                b.grant(&who(P), &who(V), DataType::LabResults, Some(200));
            },
            now: 105,
            checks: &[(P, V, LAB, CONSENT)],
        },
        Case {
            name: "paused",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::LabResults, None);
                b.emergency(&who(P), &who(R), OVERRIDE_END);
                b.paused(true);
            },
            now: 105,
            checks: &[
                (P, P, LAB, PAUSED),
                (P, V, LAB, PAUSED),
                (P, R, LAB, PAUSED),
                // Patient and data type are checked before the pause.
                (Q, V, LAB, PATIENT_NOT_FOUND),
                (P, V, 9, INVALID_DATA_TYPE),
            ],
        },
        Case {
            name: "unpaused",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::LabResults, None);
                b.paused(true);
                b.paused(false);
            },
            now: 105,
            checks: &[(P, P, LAB, SELF), (P, V, LAB, CONSENT)],
        },
        Case {
            name: "deceased",
            setup: |b| {
                b.grant(&who(P), &who(V), DataType::LabResults, None);
                b.emergency(&who(P), &who(R), OVERRIDE_END);
                b.deceased(&who(P), true);
            },
            now: 105,
            checks: &[
                (P, P, LAB, DECEASED),
                (P, V, LAB, DECEASED),
                (P, R, LAB, DECEASED),
                (P, V, 0, INVALID_DATA_TYPE),
            ],
        },
        Case {
            name: "deceased status cleared",
            setup: |b| {
                b.deceased(&who(P), true);
                b.deceased(&who(P), false);
            },
            now: 105,
            checks: &[(P, P, LAB, SELF)],
        },
        Case {
            name: "unknown patient",
            setup: nothing,
            now: 105,
            checks: &[
                (Q, Q, LAB, PATIENT_NOT_FOUND),
                (Q, V, LAB, PATIENT_NOT_FOUND),
                // The profile is read before the data type is checked.
                (Q, V, 0, PATIENT_NOT_FOUND),
                (Q, V, 9, PATIENT_NOT_FOUND),
            ],
        },
        Case {
            name: "invalid data type",
            setup: |b| b.grant(&who(P), &who(V), DataType::AllStandard, None),
            now: 105,
            // u0 is only valid in grants; checked before self access.
            checks: &[
                (P, V, 0, INVALID_DATA_TYPE),
                (P, P, 0, INVALID_DATA_TYPE),
                (P, V, 9, INVALID_DATA_TYPE),
                (P, V, 255, INVALID_DATA_TYPE),
            ],
        },
        Case {
            name: "emergency override in force",
            setup: |b| b.emergency(&who(P), &who(R), OVERRIDE_END),
            now: 105,
            checks: &[(P, R, LAB, EMERGENCY), (P, R, BASIC, EMERGENCY), (P, V, LAB, NO_CONSENT)],
        },
        Case {
            name: "emergency override one block before its expiry",
            setup: |b| b.emergency(&who(P), &who(R), 110),
            now: 109,
            checks: &[(P, R, LAB, EMERGENCY)],
        },
        Case {
            name: "emergency override at exactly its expiry",
            setup: |b| b.emergency(&who(P), &who(R), 110),
            now: 110,
            checks: &[(P, R, LAB, EMERGENCY_EXPIRED)],
        },
        Case {
            name: "responder credential withdrawn",
            setup: |b| {
                b.emergency(&who(P), &who(R), OVERRIDE_END);
                b.responder(&who(R), false);
            },
            now: 105,
            checks: &[(P, R, LAB, EMERGENCY_EXPIRED)],
        },
        Case {
            name: "responder credential restored",
            setup: |b| {
                b.emergency(&who(P), &who(R), OVERRIDE_END);
                b.responder(&who(R), false);
                b.responder(&who(R), true);
            },
            now: 105,
            checks: &[(P, R, LAB, EMERGENCY)],
        },
        Case {
            name: "emergency: enhanced types without the patient's preferences",
            setup: |b| b.emergency(&who(P), &who(R), OVERRIDE_END),
            now: 105,
            checks: &[(P, R, MENTAL, ENHANCED), (P, R, GENETIC, ENHANCED)],
        },
        Case {
            name: "emergency: mental health allowed by preference",
            setup: |b| {
                b.preferences(&who(P), true, false);
                b.emergency(&who(P), &who(R), OVERRIDE_END);
            },
            now: 105,
            checks: &[(P, R, MENTAL, EMERGENCY), (P, R, GENETIC, ENHANCED)],
        },
        Case {
            name: "emergency: genetic allowed by preference",
            setup: |b| {
                b.preferences(&who(P), false, true);
                b.emergency(&who(P), &who(R), OVERRIDE_END);
            },
            now: 105,
            checks: &[(P, R, MENTAL, ENHANCED), (P, R, GENETIC, EMERGENCY)],
        },
        Case {
            name: "emergency: expired override with enhanced preferences",
            setup: |b| {
                b.preferences(&who(P), true, true);
                b.emergency(&who(P), &who(R), 110);
            },
            now: 110,
            checks: &[(P, R, MENTAL, EMERGENCY_EXPIRED), (P, R, GENETIC, EMERGENCY_EXPIRED)],
        },
        Case {
            name: "direct consent comes before the override",
            setup: |b| {
                b.grant(&who(P), &who(R), DataType::LabResults, None);
                b.emergency(&who(P), &who(R), OVERRIDE_END);
            },
            now: 105,
            checks: &[(P, R, LAB, CONSENT), (P, R, HISTORY, EMERGENCY)],
        },
        Case {
            name: "override after a revoked consent",
            setup: |b| {
                b.grant(&who(P), &who(R), DataType::LabResults, None);
                b.revoke(&who(P), &who(R), DataType::LabResults);
                b.emergency(&who(P), &who(R), OVERRIDE_END);
            },
            now: 105,
            checks: &[(P, R, LAB, EMERGENCY)],
        },
        Case {
            // The override's reason replaces the consent's.
            name: "expired override after a revoked consent",
            setup: |b| {
                b.grant(&who(P), &who(R), DataType::LabResults, None);
                b.revoke(&who(P), &who(R), DataType::LabResults);
                b.emergency(&who(P), &who(R), 110);
            },
            now: 111,
            checks: &[(P, R, LAB, EMERGENCY_EXPIRED)],
        },
        Case {
            name: "override ended",
            setup: |b| {
                b.emergency(&who(P), &who(R), OVERRIDE_END);
                b.end_emergency(&who(P), &who(R));
            },
            now: 105,
            checks: &[(P, R, LAB, NO_CONSENT)],
        },
    ]
}

/// The history of a case, tip at burn height `now`.
fn history(setup: fn(&mut BlockBuilder), now: u64) -> Chain {
    let mut chain = Chain::with_genesis("G", |b| {
        b.register_provider(&who(V));
        b.register_provider(&who(R));
        b.responder(&who(R), true);
    });
    chain.add("A1", "G", |b| b.register_patient(&who(P)));
    chain.add("A2", "A1", setup);
    chain.add_at("A3", "A2", now, |b| b.failed_tx());
    chain
}

/// Builds the case's index and checks every query: the only caller of
/// `check_consent` in this module.
fn check(case: &Case) {
    let chain = history(case.setup, case.now);
    let index = chain.fresh_index("A3", config(10_000));
    for (patient, accessor, data_type, want) in case.checks {
        let got = index.reader.check_consent(&who(*patient), &who(*accessor), *data_type).expect("check_consent");
        let context = format!("{}: check-consent {patient:?} {accessor:?} u{data_type} at {}", case.name, case.now);
        assert_eq!(got.as_result(), *want, "{context}: {got:?}");
        assert_eq!(got.allowed, want.is_ok(), "{context}");
        assert_eq!(got.burn_block_height, case.now, "{context}: evaluated at the tip's burn height");
        if let Err(code) = want {
            let error = got.error.as_ref().expect("an error");
            let contract = medanchor_contracts::ContractError::from_code(u128::from(*code)).expect("a contract error");
            assert_eq!(error.name, contract.constant(), "{context}");
        }
        // has-consent is check-consent's is-ok.
        let has = index.reader.has_consent(&who(*patient), &who(*accessor), *data_type).expect("has_consent");
        assert_eq!(has, want.is_ok(), "{context}: has-consent");
    }
}

#[test]
fn check_consent_matches_the_contract() {
    for case in cases() {
        check(&case);
    }
}

/// "Now" is the tip block's burn height: a later `/new_burn_block` does
/// not expire anything until a Stacks block at that height arrives (a
/// read-only call at the tip would not see it either).
#[test]
fn now_is_the_tip_blocks_burn_height_not_the_last_burn_block() {
    let chain = history(|b| b.grant(&who(P), &who(V), DataType::LabResults, Some(110)), 109);
    let index = chain.fresh_index("A3", config(10_000));
    let burn = serde_json::json!({ "burn_block_hash": format!("0x{}", "ab".repeat(32)), "burn_block_height": 500 });
    index.indexer.ingest_burn_block(burn.to_string().as_bytes()).expect("burn block");
    let got = index.reader.check_consent(&who(P), &who(V), LAB).expect("check");
    assert_eq!((got.as_result(), got.burn_block_height), (CONSENT, 109));
}

/// A re-org that drops the block granting consent takes the consent away;
/// one that restores the branch gives it back.
#[test]
fn consent_follows_the_canonical_branch() {
    let mut chain = history(|b| b.grant(&who(P), &who(V), DataType::LabResults, None), 105);
    chain.add("B2", "A1", |b| b.grant(&who(P), &who(V), DataType::Genetic, None));
    chain.add("B3", "B2", |_| {});
    let index = chain.fresh_index("A3", config(10_000));
    let check = |dt: u8| index.reader.check_consent(&who(P), &who(V), dt).expect("check").as_result();
    assert_eq!((check(LAB), check(GENETIC)), (CONSENT, NO_CONSENT));
    for label in ["B2", "B3"] {
        index.ingest(chain.block(label)).expect("ingest");
    }
    assert_eq!((check(LAB), check(GENETIC)), (NO_CONSENT, CONSENT));
    // A4 on A3 brings the first branch back.
    chain.add("A4", "A3", |_| {});
    index.ingest(chain.block("A4")).expect("ingest");
    assert_eq!((check(LAB), check(GENETIC)), (CONSENT, NO_CONSENT));
}
