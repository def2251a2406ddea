//! The share store against a real RocksDB, time injected (never slept).

use std::sync::Arc;

use medanchor_contracts::types::DataType;

use super::store::{NewShare, Policy, ShareError, ShareState, ShareStore};
use super::ShareDuration;
use crate::db::ApiDb;

const PATIENT: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
const PROVIDER: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";
const T0: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;

fn open(dir: &std::path::Path, policy: Policy) -> ShareStore {
    let db = Arc::new(ApiDb::open(&dir.join("db")).expect("db"));
    ShareStore::new(db, super::link::ShareKeys::derive(&[9; 32]), policy)
}

fn store() -> (tempfile::TempDir, ShareStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path(), Policy::default());
    (dir, s)
}

fn new(types: &[DataType], duration: ShareDuration) -> NewShare {
    NewShare { data_types: types.to_vec(), duration, single_use: false, max_uses: None, link: None }
}

fn no_release(_: &super::Share) -> Vec<u8> {
    Vec::new()
}

/// A code that is not `code` (same length).
fn other(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:0width$}", (n + 1) % 10u32.pow(code.len() as u32), width = code.len())
}

#[test]
fn every_duration_expires_exactly_on_time_and_its_grants_with_it() {
    for d in ShareDuration::ALL {
        let (_dir, s) = store();
        let c = s.create(PATIENT, &new(&[DataType::LabResults], d), T0, &no_release).expect("create");
        assert_eq!(c.code.len(), 6);
        assert_eq!(c.share.expires_ms, T0 + d.millis(), "{d:?}");
        // Redeemable one millisecond before expiry; the grant ends with the share.
        let r = s.redeem_code(PATIENT, &c.code, PROVIDER, T0 + d.millis() - 1).expect("redeem before expiry");
        assert_eq!(r.grant.expires_ms, T0 + d.millis(), "{d:?}: a grant never outlives its share");
        assert!(s.check_grant(&r.token, PROVIDER, T0 + d.millis() - 1).is_ok());
        assert!(matches!(
            s.check_grant(&r.token, PROVIDER, T0 + d.millis()),
            Err(ShareError::GrantRefused("is unknown or expired"))
        ));
        // At expiry the code is dead: a wrong code as far as anyone can tell.
        assert!(matches!(
            s.redeem_code(PATIENT, &c.code, PROVIDER, T0 + d.millis()),
            Err(ShareError::WrongCode { .. })
        ));
        assert_eq!(s.list(PATIENT, T0 + d.millis()).expect("list")[0].state, ShareState::Expired);
    }
    // The default is 24 h; a grant is short-lived within a long share.
    assert_eq!(ShareDuration::default(), ShareDuration::OneDay);
    let (_dir, s) = store();
    let c = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::SevenDays), T0, &no_release).expect("c");
    let r = s.redeem_code(PATIENT, &c.code, PROVIDER, T0).expect("redeem");
    assert_eq!(r.grant.expires_ms, T0 + Policy::default().grant_ttl_ms);
}

#[test]
fn single_use_and_max_uses_are_enforced() {
    // (single_use, max_uses, redemptions that succeed)
    let cases = [(true, None, 1), (false, Some(1), 1), (false, Some(3), 3), (true, Some(1), 1)];
    for (single_use, max_uses, allowed) in cases {
        let (_dir, s) = store();
        let req = NewShare { single_use, max_uses, ..new(&[DataType::LabResults], ShareDuration::OneHour) };
        let c = s.create(PATIENT, &req, T0, &no_release).expect("create");
        let mut tokens = Vec::new();
        for i in 0..allowed {
            tokens.push(s.redeem_code(PATIENT, &c.code, PROVIDER, T0 + i).expect("allowed use").token);
        }
        assert!(
            matches!(s.redeem_code(PATIENT, &c.code, PROVIDER, T0 + 10), Err(ShareError::WrongCode { .. })),
            "{single_use} {max_uses:?}: one use too many"
        );
        let view = &s.list(PATIENT, T0 + 10).expect("list")[0];
        assert_eq!((view.state, view.uses), (ShareState::UsedUp, allowed as u32));
        // Used up is not revoked: the grants already issued stay valid.
        for t in tokens {
            assert!(s.check_grant(&t, PROVIDER, T0 + 10).is_ok());
        }
    }
    // Contradictions and bounds are refused.
    let (_dir, s) = store();
    let bad = [
        (NewShare { max_uses: Some(0), ..new(&[DataType::LabResults], ShareDuration::OneHour) }, "at least 1"),
        (NewShare { max_uses: Some(1_001), ..new(&[DataType::LabResults], ShareDuration::OneHour) }, "at most 1000"),
        (
            NewShare { single_use: true, max_uses: Some(2), ..new(&[DataType::LabResults], ShareDuration::OneHour) },
            "conflicts",
        ),
        (new(&[], ShareDuration::OneHour), "at least one data type"),
        (new(&[DataType::Genetic, DataType::Genetic], ShareDuration::OneHour), "named twice"),
    ];
    for (req, why) in bad {
        match s.create(PATIENT, &req, T0, &no_release) {
            Err(ShareError::Invalid(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[test]
fn revocation_ends_codes_links_and_grants_at_once() {
    let (_dir, s) = store();
    let req = NewShare { link: Some(false), ..new(&[DataType::LabResults], ShareDuration::OneDay) };
    let c = s.create(PATIENT, &req, T0, &no_release).expect("create");
    let (cap, _) = c.link.clone().expect("link");
    let r = s.redeem_code(PATIENT, &c.code, PROVIDER, T0).expect("redeem");
    assert!(matches!(s.revoke(PROVIDER, &c.share.id, T0), Err(ShareError::NotFound(_))), "only the patient's own");
    s.revoke(PATIENT, &c.share.id, T0 + 1).expect("revoke");
    s.revoke(PATIENT, &c.share.id, T0 + 2).expect("revoking twice is fine");
    assert!(matches!(s.redeem_code(PATIENT, &c.code, PROVIDER, T0 + 3), Err(ShareError::WrongCode { .. })));
    assert!(matches!(s.redeem_link(&cap, None, PROVIDER, T0 + 3), Err(ShareError::Inactive(ShareState::Revoked))));
    assert!(matches!(
        s.check_grant(&r.token, PROVIDER, T0 + 3),
        Err(ShareError::GrantRefused("was revoked by the patient"))
    ));
    assert_eq!(s.list(PATIENT, T0 + 3).expect("list")[0].state, ShareState::Revoked);
}

#[test]
fn grants_cover_exactly_the_scope_and_only_for_their_provider() {
    // (scope, requested, covered)
    let cases = [
        (vec![DataType::LabResults], DataType::LabResults, true),
        (vec![DataType::LabResults], DataType::MedicalHistory, false),
        (vec![DataType::AllStandard], DataType::MedicalHistory, true),
        (vec![DataType::AllStandard], DataType::MentalHealth, false),
        (vec![DataType::AllStandard], DataType::Genetic, false),
        (vec![DataType::AllStandard, DataType::MentalHealth], DataType::MentalHealth, true),
        (vec![DataType::Genetic], DataType::Genetic, true),
        (vec![DataType::Genetic], DataType::LabResults, false),
    ];
    for (scope, requested, covered) in cases {
        let (_dir, s) = store();
        let c = s.create(PATIENT, &new(&scope, ShareDuration::OneHour), T0, &no_release).expect("create");
        let r = s.redeem_code(PATIENT, &c.code, PROVIDER, T0).expect("redeem");
        assert_eq!(r.grant.covers(requested), covered, "{scope:?} → {requested}");
        assert_eq!(r.grant.method, "access_code");
        assert!(matches!(
            s.check_grant(&r.token, PATIENT, T0),
            Err(ShareError::GrantRefused("was issued to another provider"))
        ));
    }
    let (_dir, s) = store();
    for bad in ["", "abc", &"A".repeat(43)] {
        assert!(s.check_grant(bad, PROVIDER, T0).is_err(), "{bad:?}");
    }
}

#[test]
fn the_code_is_stored_only_as_its_keyed_mac() {
    let (_dir, s) = store();
    let c = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneHour), T0, &no_release).expect("c");
    let stored = s.share(&c.share.id).expect("get").expect("stored");
    let json = serde_json::to_value(&stored).expect("json");
    let fields = json.as_object().expect("object");
    assert!(!fields.contains_key("code"));
    assert!(fields.values().all(|v| v.as_str() != Some(c.code.as_str())), "{json}");
    // HMAC under the node key: another key gives another MAC for the same
    // patient and code.
    assert_eq!(json["code_mac"], hex::encode(s.mac(PATIENT, &c.code)));
    let dir = tempfile::tempdir().expect("tempdir");
    let other = ShareStore::new(
        Arc::new(ApiDb::open(&dir.path().join("db")).expect("db")),
        super::link::ShareKeys::derive(&[10; 32]),
        Policy::default(),
    );
    assert_ne!(hex::encode(other.mac(PATIENT, &c.code)), json["code_mac"].as_str().expect("mac"));
}

#[test]
fn codes_are_bound_to_their_patient_and_malformed_codes_are_not_attempts() {
    let (_dir, s) = store();
    let c = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneHour), T0, &no_release).expect("c");
    // The same digits for another patient are not this patient's code.
    assert!(matches!(s.redeem_code(PROVIDER, &c.code, PROVIDER, T0), Err(ShareError::WrongCode { remaining: 9 })));
    for bad in ["12345", "1234567", "12a456", " 123456", ""] {
        assert!(matches!(s.redeem_code(PATIENT, bad, PROVIDER, T0), Err(ShareError::Invalid(_))), "{bad:?}");
    }
    assert_eq!(s.guard(PATIENT).expect("guard").failures, 0, "a malformed code tests nothing");
    assert_eq!(s.list(PATIENT, T0).expect("list")[0].failures, 0);
    // At most A live codes; dead ones do not count.
    let (_dir, s) = store();
    for _ in 0..Policy::default().max_active {
        s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneHour), T0, &no_release).expect("c");
    }
    assert!(matches!(
        s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneHour), T0, &no_release),
        Err(ShareError::TooManyActive(10))
    ));
    s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneHour), T0 + HOUR, &no_release)
        .expect("after the others expired");
}

#[test]
fn failure_caps_survive_a_restart_and_lock_until_the_patient_acts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Policy::default();
    let code = {
        let s = open(dir.path(), p);
        let c = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneDay), T0, &no_release).expect("c");
        for i in 0..p.code_max_failures - 1 {
            // A guesser is told only the patient-level count.
            match s.redeem_code(PATIENT, &other(&c.code), PROVIDER, T0) {
                Err(ShareError::WrongCode { remaining }) => assert_eq!(remaining, p.patient_max_failures - 1 - i),
                other => panic!("{other:?}"),
            }
        }
        c.code
    };
    // Restart: the counters are where they were.
    let s = open(dir.path(), p);
    assert_eq!(s.list(PATIENT, T0).expect("list")[0].failures, p.code_max_failures - 1);
    assert!(matches!(s.redeem_code(PATIENT, &other(&code), PROVIDER, T0), Err(ShareError::WrongCode { remaining: 5 })));
    // Burned: the right code no longer works.
    assert!(matches!(s.redeem_code(PATIENT, &code, PROVIDER, T0), Err(ShareError::WrongCode { .. })));
    assert_eq!(s.list(PATIENT, T0).expect("list")[0].state, ShareState::Burned);
    // The patient's own cap: F_p failures in all (counting the right code
    // above, now dead), then locked — across another restart.
    let failures = s.guard(PATIENT).expect("guard").failures;
    assert_eq!(failures, p.code_max_failures + 1);
    for _ in failures..p.patient_max_failures - 1 {
        assert!(matches!(s.redeem_code(PATIENT, "000000", PROVIDER, T0), Err(ShareError::WrongCode { .. })));
    }
    drop(s);
    let s = open(dir.path(), p);
    assert!(matches!(s.redeem_code(PATIENT, "000000", PROVIDER, T0), Err(ShareError::Locked(10))));
    // Locked: even a right code of a fresh share is not evaluated, and the
    // counter no longer moves.
    assert!(matches!(s.redeem_code(PATIENT, "123456", PROVIDER, T0), Err(ShareError::Locked(10))));
    assert_eq!(s.guard(PATIENT).expect("guard").failures, 10);
    let g = s.unlock(PATIENT).expect("unlock");
    assert_eq!((g.failures, g.locked, g.lifetime_failures), (0, false, 10));
    // Locked again (no live code: the guesses still count, so a guesser
    // cannot tell); the patient's next code lifts the lock and works.
    for _ in 0..p.patient_max_failures {
        let _ = s.redeem_code(PATIENT, "000000", PROVIDER, T0);
    }
    assert!(s.guard(PATIENT).expect("guard").locked);
    let c = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneDay), T0, &no_release).expect("c");
    assert_eq!(c.unlocked, Some(10));
    assert_eq!(s.guard(PATIENT).expect("guard").lifetime_failures, 20);
    s.redeem_code(PATIENT, &c.code, PROVIDER, T0).expect("works again");
    let again = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneDay), T0, &no_release).expect("c");
    assert_eq!(again.unlocked, None);
}

#[test]
fn parallel_guesses_are_counted_one_by_one_and_never_exceed_the_caps() {
    let (_dir, s) = store();
    let s = Arc::new(s);
    let p = *s.policy();
    let c = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneDay), T0, &no_release).expect("c");
    let wrong: Vec<String> = (0..64u32).map(|i| format!("{i:06}")).filter(|g| *g != c.code).take(48).collect();
    let outcomes: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = wrong
            .iter()
            .map(|g| {
                let s = s.clone();
                scope.spawn(move || match s.redeem_code(PATIENT, g, PROVIDER, T0) {
                    Ok(_) => "redeemed".to_string(),
                    Err(ShareError::WrongCode { .. }) => "wrong".into(),
                    Err(ShareError::Locked(_)) => "locked".into(),
                    Err(e) => format!("{e}"),
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let count = |o: &str| outcomes.iter().filter(|x| *x == o).count();
    // Exactly F_p attempts were evaluated (the last of them locks); the
    // rest were refused unevaluated.
    assert_eq!(count("wrong") + 1, p.patient_max_failures as usize, "{outcomes:?}");
    assert_eq!(count("locked"), wrong.len() - count("wrong"), "{outcomes:?}");
    assert_eq!(count("redeemed"), 0);
    let view = &s.list(PATIENT, T0).expect("list")[0];
    assert_eq!((view.failures, view.state), (p.code_max_failures, ShareState::Burned));
    assert_eq!(s.guard(PATIENT).expect("guard").failures, p.patient_max_failures);
}

/// An optimal attacker (distinct guesses, stops when nothing is left to
/// win) against a 2-digit code space, so success is frequent enough to
/// measure: the measured rate stays under the documented bound, and is not
/// trivially zero.
#[test]
fn an_attackers_measured_success_rate_stays_under_the_bound() {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    // (live codes per patient, expected rate from combinatorics)
    for (codes, exact) in [(1u64, 0.05), (10, 1.0 - 0.5838)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = Policy { digits: 2, ..Policy::default() };
        let s = open(dir.path(), policy);
        let trials = 1_500;
        let mut wins = 0;
        for t in 0..trials {
            let patient = format!("patient-{t}");
            for _ in 0..codes {
                s.create(&patient, &new(&[DataType::LabResults], ShareDuration::OneHour), T0, &no_release).expect("c");
            }
            let mut guesses: Vec<String> = (0..100).map(|i| format!("{i:02}")).collect();
            guesses.shuffle(&mut rng);
            for g in guesses {
                match s.redeem_code(&patient, &g, PROVIDER, T0) {
                    Ok(_) => {
                        wins += 1;
                        break;
                    }
                    Err(ShareError::WrongCode { remaining }) if remaining > 0 => {}
                    Err(ShareError::WrongCode { .. } | ShareError::Locked(_)) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        let rate = f64::from(wins) / f64::from(trials);
        let bound = policy.success_bound(codes);
        let sigma = (exact * (1.0 - exact) / f64::from(trials)).sqrt();
        assert!(rate <= bound + 4.0 * sigma, "{codes} codes: rate {rate} over the bound {bound}");
        assert!((rate - exact).abs() <= 4.0 * sigma, "{codes} codes: rate {rate}, expected {exact}");
    }
    // The production policy's bound.
    let p = Policy::default();
    assert!(p.success_bound(1) < 5.001e-6);
    assert!(p.success_bound(1_000) < 1.001e-4);
}

#[test]
fn links_need_their_passcode_and_count_wrong_ones() {
    let (_dir, s) = store();
    let p = *s.policy();
    let release = |share: &super::Share| format!("{{\"share\":\"{}\"}}", share.id).into_bytes();
    let req = NewShare { link: Some(true), ..new(&[DataType::LabResults], ShareDuration::OneDay) };
    let c = s.create(PATIENT, &req, T0, &release).expect("create");
    let (cap, key) = c.link.clone().expect("link");
    assert!(matches!(s.redeem_link(&cap, None, PROVIDER, T0), Err(ShareError::PasscodeRequired { remaining: 5 })));
    assert!(matches!(
        s.redeem_link(&cap, Some(&other(&c.code)), PROVIDER, T0),
        Err(ShareError::WrongCode { remaining: 4 })
    ));
    let (r, jwe) = s.redeem_link(&cap, Some(&c.code), PROVIDER, T0).expect("redeem");
    assert_eq!(r.grant.method, "qr_code");
    let plain = super::link::jwe_decrypt(&key, &jwe).expect("decrypts with the QR's key");
    assert_eq!(plain, format!("{{\"share\":\"{}\"}}", c.share.id).into_bytes());
    // Unknown and malformed capabilities.
    assert!(matches!(s.redeem_link(&"A".repeat(43), None, PROVIDER, T0), Err(ShareError::NotFound(_))));
    assert!(matches!(s.redeem_link("short", None, PROVIDER, T0), Err(ShareError::Invalid(_))));
    // Burned by wrong passcodes like a code.
    for _ in 1..p.code_max_failures {
        let _ = s.redeem_link(&cap, Some(&other(&c.code)), PROVIDER, T0);
    }
    assert!(matches!(s.redeem_link(&cap, Some(&c.code), PROVIDER, T0), Err(ShareError::Inactive(ShareState::Burned))));
}

#[test]
fn the_sweeper_removes_dead_shares_once_no_grant_needs_them() {
    let (_dir, s) = store();
    let one = NewShare { single_use: true, ..new(&[DataType::LabResults], ShareDuration::SevenDays) };
    let used = s.create(PATIENT, &one, T0, &no_release).expect("c");
    let r = s.redeem_code(PATIENT, &used.code, PROVIDER, T0).expect("redeem");
    let revoked = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneDay), T0, &no_release).expect("c");
    s.revoke(PATIENT, &revoked.share.id, T0).expect("revoke");
    let expiring =
        s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::OneHour), T0, &no_release).expect("c");
    let live = s.create(PATIENT, &new(&[DataType::LabResults], ShareDuration::SevenDays), T0, &no_release).expect("c");
    // Now: the revoked one goes; the used one stays while its grant lives.
    assert_eq!(s.sweep(T0 + 1).expect("sweep"), (1, 0));
    assert!(s.check_grant(&r.token, PROVIDER, T0 + 1).is_ok());
    // After an hour: the expired share, the used one (its grant is over), the grant.
    assert_eq!(s.sweep(T0 + HOUR).expect("sweep"), (2, 1));
    let left: Vec<String> = s.list(PATIENT, T0 + HOUR).expect("list").into_iter().map(|v| v.id).collect();
    assert_eq!(left, vec![live.share.id.clone()]);
    assert!(s.share(&expiring.share.id).expect("get").is_none());
    assert_eq!(s.sweep(T0 + HOUR).expect("sweep"), (0, 0), "idempotent");
}

/// The share families are part of the API database and carry its schema
/// version: a database stamped 1 (the first release's layout) is migrated
/// on open with its shares, counters and grants as they were.
#[test]
fn shares_counters_and_grants_survive_the_schema_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = || super::link::ShareKeys::derive(&[9; 32]);
    let (before, guard, token) = {
        let db = Arc::new(ApiDb::open(&dir.path().join("db")).expect("db"));
        let s = ShareStore::new(db.clone(), keys(), Policy::default());
        let c = s
            .create(PATIENT, &new(&[DataType::LabResults], ShareDuration::SevenDays), T0, &no_release)
            .expect("create");
        assert!(matches!(s.redeem_code(PATIENT, &other(&c.code), PROVIDER, T0 + 1), Err(ShareError::WrongCode { .. })));
        let r = s.redeem_code(PATIENT, &c.code, PROVIDER, T0 + 2).expect("redeem");
        db.stamp(1).expect("stamp the first layout");
        (s.list(PATIENT, T0 + 3).expect("list"), s.guard(PATIENT).expect("guard"), r.token)
    };
    let db = Arc::new(ApiDb::open(&dir.path().join("db")).expect("migrated"));
    assert_eq!(db.schema_version().expect("version"), Some(crate::db::SCHEMA_VERSION));
    let s = ShareStore::new(db, keys(), Policy::default());
    assert_eq!(s.list(PATIENT, T0 + 3).expect("list"), before);
    assert_eq!(s.guard(PATIENT).expect("guard"), guard, "the failure counters");
    assert_eq!(s.check_grant(&token, PROVIDER, T0 + 3).expect("the grant").patient, PATIENT);
}
