//! One scripted history that calls every public function on its success
//! path and provokes every documented error code, on a single chain.
//! Afterwards it checks the coverage itself: every public function of both
//! contracts succeeded at least once, every `ContractError` was returned,
//! and every event name was printed — so adding a function, an error or an
//! event without a test here fails this test.

use std::collections::BTreeSet;

use medanchor_contracts::events::{CONSENT_EVENT_NAMES, RECORD_EVENT_NAMES};
use medanchor_contracts::{ClarityValue, ContractError as E, ContractName};

use super::support::*;

enum Expect {
    /// `(ok …)`, optionally with this value.
    Ok(Option<ClarityValue>),
    /// `(err code)`.
    Err(E),
    /// A read-only function's plain value.
    Value(ClarityValue),
}

enum Line {
    Call { who: String, c: ContractName, f: &'static str, args: Vec<ClarityValue>, expect: Expect },
    Advance(u32),
}

fn call(who: &str, c: ContractName, f: &'static str, args: Vec<ClarityValue>, expect: Expect) -> Line {
    Line::Call { who: who.to_string(), c, f, args, expect }
}
fn okv(v: ClarityValue) -> Expect {
    Expect::Ok(Some(v))
}
fn ok_any() -> Expect {
    Expect::Ok(None)
}
fn ok_true() -> Expect {
    Expect::Ok(Some(b(true)))
}

/// Public and read-only function names declared in a contract's source.
fn declared(source: &str, keyword: &str) -> BTreeSet<String> {
    source
        .split(&format!("({keyword} ("))
        .skip(1)
        .map(|rest| rest.split([' ', ')', '\n']).next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_function_succeeds_and_every_error_is_reachable() {
    let (a, pr, r, s) = (WALLET_1, WALLET_2, WALLET_3, FAUCET);
    let pb = account(1); // a second patient
    let q = account(2); // a provider with read access
    let d = account(3); // a deactivated provider
    let (pb, q, d) = (pb.as_str(), q.as_str(), d.as_str());
    use Expect::{Err as Fails, Value};
    let mut chain = Chain::new();
    let h0 = chain.height();

    let script = vec![
        // Providers and emergency responders, by the contract owner.
        call(s, RM, "register-provider", vec![p(pr), h32(0xa1)], Fails(E::RecordUnauthorized)),
        call(DEPLOYER, RM, "register-provider", vec![p(pr), h32(0xa1)], ok_true()),
        call(DEPLOYER, RM, "register-provider", vec![p(pr), h32(0xa1)], Fails(E::ProviderExists)),
        call(DEPLOYER, RM, "register-provider", vec![p(r), h32(0xa2)], ok_true()),
        call(DEPLOYER, RM, "register-provider", vec![p(q), h32(0xa3)], ok_true()),
        call(DEPLOYER, RM, "register-provider", vec![p(d), h32(0xa4)], ok_true()),
        call(DEPLOYER, RM, "set-provider-active", vec![p(d), b(false)], ok_true()),
        call(DEPLOYER, RM, "set-provider-active", vec![p(s), b(false)], Fails(E::ProviderNotFound)),
        call(DEPLOYER, RM, "set-provider-credential", vec![p(s), h32(0xa5)], Fails(E::ProviderNotFound)),
        call(q, RM, "set-provider-credential", vec![p(q), h32(0xa5)], Fails(E::RecordUnauthorized)),
        call(DEPLOYER, RM, "set-provider-credential", vec![p(q), h32(0xa6)], ok_true()),
        call(s, PC, "set-emergency-responder", vec![p(r), b(true)], Fails(E::Unauthorized)),
        call(DEPLOYER, PC, "set-emergency-responder", vec![p(r), b(true)], ok_true()),
        call(DEPLOYER, PC, "set-emergency-timeout", vec![u(0)], Fails(E::InvalidTimeout)),
        call(DEPLOYER, PC, "set-emergency-timeout", vec![u(4321)], Fails(E::InvalidTimeout)),
        call(DEPLOYER, PC, "set-emergency-timeout", vec![u(10)], ok_true()),
        call(DEPLOYER, PC, "get-emergency-timeout", vec![], Value(u(10))),
        // Patients.
        call(a, PC, "register-patient", vec![h32(1), none(), none()], ok_true()),
        call(a, PC, "register-patient", vec![h32(9), none(), none()], Fails(E::AlreadyRegistered)),
        call(pb, PC, "register-patient", vec![h32(1), none(), none()], Fails(E::PatientIdTaken)),
        call(pb, PC, "register-patient", vec![h32(2), none(), some(p(pr))], ok_true()),
        call(DEPLOYER, PC, "get-patient-by-id", vec![h32(2)], Value(some(p(pb)))),
        // Consent.
        call(s, PC, "grant-consent", vec![p(pr), u(1), none()], Fails(E::PatientNotFound)),
        call(a, PC, "grant-consent", vec![p(pr), u(9), none()], Fails(E::InvalidDataType)),
        call(a, PC, "grant-consent", vec![p(pr), u(1), some(u(0))], Fails(E::InvalidDuration)),
        call(a, PC, "grant-consent", vec![p(pr), u(1), some(u(5_259_601))], Fails(E::InvalidDuration)),
        call(a, PC, "grant-consent", vec![p(pr), u(1), some(u(u128::MAX))], Fails(E::InvalidDuration)),
        call(a, PC, "grant-consent", vec![p(a), u(1), none()], Fails(E::InvalidPrincipal)),
        call(a, PC, "grant-consent", vec![p(pr), u(0), none()], okv(u(1))),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(pr), u(2)], okv(u(1))),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(pr), u(5)], Fails(E::NoConsent)),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(a), u(5)], okv(u(0))),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(pr), u(0)], Fails(E::InvalidDataType)),
        call(a, PC, "revoke-consent", vec![p(pr), u(5)], Fails(E::NoConsent)),
        call(a, PC, "grant-consent", vec![p(pr), u(5), some(u(1))], okv(u(2))),
        Line::Advance(1),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(pr), u(5)], Fails(E::ConsentExpired)),
        call(a, PC, "revoke-consent", vec![p(pr), u(5)], okv(u(3))),
        call(a, PC, "revoke-consent", vec![p(pr), u(5)], Fails(E::ConsentRevoked)),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(pr), u(5)], Fails(E::ConsentRevoked)),
        call(a, PC, "update-patient-preferences", vec![none(), none(), b(true), b(false)], okv(u(4))),
        call(DEPLOYER, PC, "has-consent", vec![p(a), p(pr), u(1)], Value(b(true))),
        call(DEPLOYER, PC, "has-consent", vec![p(a), p(pr), u(6)], Value(b(false))),
        call(DEPLOYER, PC, "get-history-length", vec![p(a)], Value(u(5))),
        // Emergency override.
        call(s, PC, "emergency-override", vec![p(a), u(1)], Fails(E::EmergencyNotAuthorized)),
        call(r, PC, "emergency-override", vec![p(a), u(0)], Fails(E::InvalidReason)),
        call(r, PC, "emergency-override", vec![p(a), u(1)], okv(u(h0 + 1 + 10))),
        call(r, PC, "emergency-override", vec![p(a), u(1)], Fails(E::EmergencyAlreadyActive)),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(r), u(5)], okv(u(2))),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(r), u(6)], Fails(E::EnhancedProtection)),
        call(s, PC, "end-emergency-override", vec![p(a), p(r)], Fails(E::Unauthorized)),
        call(a, PC, "end-emergency-override", vec![p(a), p(pr)], Fails(E::NoEmergencyOverride)),
        Line::Advance(10),
        call(DEPLOYER, PC, "check-consent", vec![p(a), p(r), u(1)], Fails(E::EmergencyExpired)),
        call(a, PC, "end-emergency-override", vec![p(a), p(r)], okv(u(6))),
        // Provider access.
        call(a, RM, "grant-provider-access", vec![p(pr), u(3), none()], Fails(E::InvalidAccessLevel)),
        call(a, RM, "grant-provider-access", vec![p(pr), u(1), some(u(0))], Fails(E::RecordInvalidDuration)),
        call(a, RM, "grant-provider-access", vec![p(pr), u(1), some(u(u128::MAX))], Fails(E::RecordInvalidDuration)),
        call(a, RM, "grant-provider-access", vec![p(a), u(1), none()], Fails(E::RecordInvalidPrincipal)),
        call(a, RM, "grant-provider-access", vec![p(s), u(1), none()], Fails(E::ProviderNotFound)),
        call(a, RM, "grant-provider-access", vec![p(d), u(1), none()], Fails(E::ProviderInactive)),
        call(s, RM, "grant-provider-access", vec![p(pr), u(2), none()], Fails(E::PatientNotFound)),
        call(a, RM, "grant-provider-access", vec![p(pr), u(1), none()], ok_true()),
        call(a, RM, "grant-provider-access", vec![p(q), u(0), none()], ok_true()),
        call(a, PC, "grant-consent", vec![p(q), u(0), none()], okv(u(7))),
        // Records.
        call(q, RM, "create-record", vec![id16(1), p(a), u(2), h32(1), none(), u(0)], Fails(E::InsufficientAccess)),
        call(r, RM, "create-record", vec![id16(1), p(a), u(2), h32(1), none(), u(0)], Fails(E::NoConsent)),
        call(pr, RM, "create-record", vec![id16(1), p(a), u(14), h32(1), none(), u(0)], Fails(E::InvalidRecordType)),
        call(pr, RM, "create-record", vec![id16(1), p(a), u(0), h32(1), none(), u(0)], Fails(E::InvalidRecordType)),
        call(
            pr,
            RM,
            "create-record",
            vec![id16(1), p(a), u(2), h32(1), none(), u(4)],
            Fails(E::InvalidConfidentiality),
        ),
        call(pr, RM, "create-record", vec![id16(1), p(a), u(10), h32(1), none(), u(0)], Fails(E::ConsentRevoked)),
        call(pr, RM, "create-record", vec![id16(1), p(a), u(2), h32(1), some(h32(0xee)), u(1)], okv(u(1))),
        call(pr, RM, "create-record", vec![id16(1), p(a), u(2), h32(2), none(), u(0)], Fails(E::RecordExists)),
        call(pr, RM, "create-record", vec![id16(2), p(a), u(2), h32(1), none(), u(0)], Fails(E::DuplicateHash)),
        call(pr, RM, "get-record", vec![id16(9)], Fails(E::RecordNotFound)),
        call(q, RM, "get-record", vec![id16(1)], ok_any()),
        call(a, RM, "get-record", vec![id16(1)], ok_any()),
        call(s, RM, "get-record", vec![id16(1)], Fails(E::NoConsent)),
        call(q, RM, "update-record", vec![id16(1), u(1), h32(2), none()], Fails(E::InsufficientAccess)),
        call(a, RM, "update-record", vec![id16(1), u(1), h32(2), none()], Fails(E::RecordUnauthorized)),
        call(pr, RM, "update-record", vec![id16(1), u(2), h32(2), none()], Fails(E::VersionConflict)),
        call(pr, RM, "update-record", vec![id16(1), u(1), h32(1), none()], Fails(E::DuplicateHash)),
        call(pr, RM, "update-record", vec![id16(1), u(1), h32(2), none()], okv(u(2))),
        call(pr, RM, "rollback-record", vec![id16(1), u(2), u(5)], Fails(E::InvalidVersion)),
        call(pr, RM, "rollback-record", vec![id16(1), u(2), u(2)], Fails(E::InvalidVersion)),
        call(pr, RM, "rollback-record", vec![id16(1), u(1), u(1)], Fails(E::VersionConflict)),
        call(pr, RM, "rollback-record", vec![id16(1), u(2), u(1)], okv(u(3))),
        call(
            DEPLOYER,
            RM,
            "get-anchor",
            vec![h32(2)],
            Value(some(ClarityValue::tuple([("record-id", id16(1)), ("version", u(2))]))),
        ),
        call(pr, RM, "finalize-record", vec![id16(1)], ok_true()),
        call(pr, RM, "finalize-record", vec![id16(1)], Fails(E::RecordFinalized)),
        call(pr, RM, "update-record", vec![id16(1), u(3), h32(3), none()], Fails(E::RecordFinalized)),
        call(pr, RM, "unlock-record", vec![id16(1)], Fails(E::InsufficientAccess)),
        call(a, RM, "grant-provider-access", vec![p(pr), u(2), none()], ok_true()),
        call(pr, RM, "unlock-record", vec![id16(1)], ok_true()),
        call(pr, RM, "unlock-record", vec![id16(1)], Fails(E::RecordNotFinalized)),
        call(a, RM, "revoke-provider-access", vec![p(s)], Fails(E::NoProviderAccess)),
        // Emergency: read and create, nothing more.
        call(r, PC, "emergency-override", vec![p(a), u(2)], ok_any()),
        call(r, RM, "create-record", vec![id16(3), p(a), u(1), h32(3), none(), u(0)], okv(u(1))),
        call(r, RM, "get-record", vec![id16(1)], ok_any()),
        call(r, RM, "update-record", vec![id16(3), u(1), h32(4), none()], Fails(E::EmergencyViolation)),
        call(r, RM, "archive-record", vec![id16(3)], Fails(E::EmergencyViolation)),
        call(DEPLOYER, PC, "set-emergency-responder", vec![p(r), b(false)], ok_true()),
        call(r, RM, "get-record", vec![id16(1)], Fails(E::EmergencyExpired)),
        call(DEPLOYER, PC, "set-emergency-responder", vec![p(r), b(true)], ok_true()),
        call(r, PC, "end-emergency-override", vec![p(a), p(r)], ok_any()),
        // Provider access that expires.
        call(a, RM, "grant-provider-access", vec![p(r), u(1), some(u(1))], ok_true()),
        call(a, PC, "grant-consent", vec![p(r), u(1), none()], ok_any()),
        Line::Advance(1),
        call(r, RM, "update-record", vec![id16(3), u(1), h32(4), none()], Fails(E::ProviderAccessExpired)),
        call(a, RM, "revoke-provider-access", vec![p(q)], ok_true()),
        call(q, RM, "create-record", vec![id16(4), p(a), u(1), h32(5), none(), u(0)], Fails(E::NoProviderAccess)),
        // Retention, archive and purge.
        call(DEPLOYER, RM, "set-retention-period", vec![u(0)], Fails(E::InvalidRetention)),
        call(DEPLOYER, RM, "set-retention-period", vec![u(5_259_601)], Fails(E::InvalidRetention)),
        call(s, RM, "set-retention-period", vec![u(5)], Fails(E::RecordUnauthorized)),
        call(DEPLOYER, RM, "set-retention-period", vec![u(5)], ok_true()),
        call(pr, RM, "create-record", vec![id16(5), p(a), u(5), h32(6), none(), u(0)], okv(u(1))),
        call(DEPLOYER, RM, "purge-record", vec![id16(5)], Fails(E::RecordNotArchived)),
        call(pr, RM, "archive-record", vec![id16(5)], ok_true()),
        call(pr, RM, "archive-record", vec![id16(5)], Fails(E::RecordNotActive)),
        call(pr, RM, "update-record", vec![id16(5), u(1), h32(7), none()], Fails(E::RecordNotActive)),
        call(DEPLOYER, RM, "purge-record", vec![id16(5)], Fails(E::RetentionActive)),
        call(pr, RM, "purge-record", vec![id16(5)], Fails(E::RecordUnauthorized)),
        Line::Advance(5),
        call(DEPLOYER, RM, "purge-record", vec![id16(5)], ok_true()),
        // Anchors.
        call(s, RM, "anchor-batch", vec![h32(0xb0), u(10)], Fails(E::NotAnchorSubmitter)),
        call(DEPLOYER, RM, "set-anchor-operator", vec![p(s), b(true)], ok_true()),
        call(s, RM, "anchor-batch", vec![h32(0xb0), u(0)], Fails(E::InvalidBatch)),
        call(s, RM, "anchor-batch", vec![h32(0xb0), u(1 << 64)], Fails(E::InvalidBatch)),
        call(s, RM, "anchor-audit-root", vec![u(1 << 64), h32(0xc5)], Fails(E::InvalidBatch)),
        call(s, RM, "anchor-batch", vec![h32(0xb0), u(10)], ok_true()),
        call(pr, RM, "anchor-batch", vec![h32(0xb0), u(10)], Fails(E::BatchExists)),
        call(s, RM, "anchor-audit-root", vec![u(5), h32(0xc5)], ok_true()),
        call(s, RM, "anchor-audit-root", vec![u(5), h32(0xc6)], Fails(E::StaleCheckpoint)),
        call(pr, RM, "anchor-audit-root", vec![u(6), h32(0xc6)], ok_true()),
        // Deceased and pause.
        call(s, PC, "set-deceased", vec![p(pb), b(true)], Fails(E::Unauthorized)),
        call(pr, PC, "set-deceased", vec![p(pb), b(true)], okv(u(1))),
        call(pb, PC, "grant-consent", vec![p(pr), u(1), none()], Fails(E::PatientDeceased)),
        call(s, PC, "pause", vec![], Fails(E::Unauthorized)),
        call(DEPLOYER, PC, "pause", vec![], ok_true()),
        call(a, PC, "grant-consent", vec![p(pr), u(1), none()], Fails(E::Paused)),
        call(a, PC, "revoke-consent", vec![p(pr), u(0)], ok_any()),
        call(pr, RM, "create-record", vec![id16(6), p(a), u(1), h32(8), none(), u(0)], Fails(E::Paused)),
        call(s, RM, "anchor-batch", vec![h32(0xb1), u(1)], Fails(E::Paused)),
        call(DEPLOYER, PC, "unpause", vec![], ok_true()),
        // Ownership moves in two steps.
        call(s, PC, "propose-owner", vec![p(r)], Fails(E::Unauthorized)),
        call(DEPLOYER, PC, "propose-owner", vec![p(r)], ok_true()),
        call(s, PC, "accept-ownership", vec![], Fails(E::NotPendingOwner)),
        call(r, PC, "accept-ownership", vec![], ok_true()),
        call(DEPLOYER, PC, "pause", vec![], Fails(E::Unauthorized)),
        call(DEPLOYER, RM, "propose-owner", vec![p(r)], ok_true()),
        call(s, RM, "accept-ownership", vec![], Fails(E::RecordNotPendingOwner)),
        call(r, RM, "accept-ownership", vec![], ok_true()),
        call(DEPLOYER, RM, "set-retention-period", vec![u(10)], Fails(E::RecordUnauthorized)),
    ];

    let mut succeeded: BTreeSet<(ContractName, &str)> = BTreeSet::new();
    let mut errors: BTreeSet<u32> = BTreeSet::new();
    let mut events: BTreeSet<String> = BTreeSet::new();
    let read_only: BTreeSet<String> =
        ContractName::ALL.iter().flat_map(|c| declared(c.source(), "define-read-only")).collect();
    for (line_no, line) in script.into_iter().enumerate() {
        let (who, c, f, args, expect) = match line {
            Line::Advance(n) => {
                chain.advance(n);
                continue;
            }
            Line::Call { who, c, f, args, expect } => (who, c, f, args, expect),
        };
        let out = chain.call(&who, c, f, &args);
        let here = format!("line {line_no}: {c}::{f} by {who}");
        match expect {
            Expect::Ok(value) => {
                let ClarityValue::Response(Ok(got)) = out.result() else {
                    panic!("{here}: expected ok, got {:?} ({:?})", out.result(), out.err());
                };
                if let Some(value) = value {
                    assert_eq!(**got, value, "{here}");
                }
                succeeded.insert((c, f));
            }
            Expect::Err(e) => {
                assert_eq!(out.err(), Some(e), "{here}: got {:?}", out.result());
                errors.insert(e.code());
            }
            Expect::Value(v) => assert_eq!(out.result(), &v, "{here}"),
        }
        // Every state change prints exactly one event; failures and reads print none.
        let expected_prints = usize::from(out.raw.is_ok() && !read_only.contains(f));
        assert_eq!(out.raw.prints.len(), expected_prints, "{here}: prints {:?}", out.raw.prints);
        for (_, print) in &out.raw.prints {
            events.insert(match field(print, "event") {
                ClarityValue::StringAscii(name) => name,
                other => panic!("{here}: event name {other:?}"),
            });
        }
    }

    for contract in ContractName::ALL {
        for f in declared(contract.source(), "define-public") {
            assert!(succeeded.contains(&(contract, f.as_str())), "{contract}::{f} never succeeded in the script");
        }
    }
    let missing: Vec<_> = E::ALL.iter().filter(|e| !errors.contains(&e.code())).collect();
    assert!(missing.is_empty(), "error codes never provoked: {missing:?}");
    let all_events: BTreeSet<String> =
        CONSENT_EVENT_NAMES.iter().chain(RECORD_EVENT_NAMES).map(|s| s.to_string()).collect();
    assert_eq!(events, all_events, "events printed vs. events the decoders know");
}

#[test]
fn failed_calls_change_nothing() {
    // A public function that returns (err …) is rolled back with its events,
    // as on Stacks: the patient is not registered after a failed grant.
    let mut chain = Chain::new();
    chain.ok(WALLET_1, PC, "register-patient", &[h32(1), none(), none()]);
    chain.err(WALLET_1, PC, "grant-consent", &[p(WALLET_2), u(1), some(u(0))], E::InvalidDuration);
    assert_eq!(chain.read(PC, "get-history-length", &[p(WALLET_1)]), u(1));
    assert_eq!(chain.read(PC, "get-consent", &[p(WALLET_1), p(WALLET_2), u(1)]), none());
}

#[test]
fn cost_report_covers_every_public_function_within_a_block() {
    let lines = medanchor_devnet::costs::cost_report().expect("cost scenario runs");
    for contract in ContractName::ALL {
        for f in declared(contract.source(), "define-public") {
            let line = lines
                .iter()
                .find(|l| l.contract == contract.name() && l.function == f)
                .unwrap_or_else(|| panic!("{contract}::{f} missing from the cost report"));
            assert!(line.cost.runtime > 0 && line.per_block > 0, "{contract}::{f}: {line:?}");
        }
    }
}
