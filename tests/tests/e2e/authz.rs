//! The API's one authorization rule against the contract itself.
//!
//! `differential_*`: random chain states built by real signed transactions
//! (providers registered and deactivated, consents granted, expiring and
//! revoked, access levels, emergency responders and overrides, pauses,
//! deceased flags, records finalized and archived, burn blocks passing);
//! after every step, for every caller, record and operation, the API's
//! decision (`authz::authorize_record` on the indexer's facts) is compared
//! with what the contract function itself returns when run on the tip
//! (`Chain::simulate_public`, nothing committed).
//!
//! The other tests are the regressions of the holes the rule closed, over
//! HTTP.

use std::collections::BTreeSet;

use clarity_repl::clarity::codec::StacksMessageCodec;
use clarity_repl::clarity::vm::types::{PrincipalData, QualifiedContractIdentifier};
use medanchor_api::authz::{self, Operation};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessLevel, DataType, RecordType};
use medanchor_contracts::{ClarityValue, ContractName, RecordId, DEPLOYER_ADDRESS};
use medanchor_indexer::AccessReader;
use medanchor_wallet::{ContractCall, GrantDuration};
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::branches::advance_burn;
use super::System;

fn owner_call(contract: ContractName, function: &'static str, args: Vec<ClarityValue>) -> ContractCall {
    ContractCall { contract, function, args }
}

/// The contract function's answer on the tip: `Ok` or the error code.
fn contract_answer(sys: &System, sender: &Principal, call: &ContractCall) -> Result<(), u32> {
    let args: Vec<_> = call
        .args
        .iter()
        .map(|a| clarity_repl::clarity::vm::Value::consensus_deserialize(&mut &a.serialize()[..]).expect("our codec"))
        .collect();
    let id = QualifiedContractIdentifier::parse(&format!("{DEPLOYER_ADDRESS}.{}", call.contract.name())).expect("id");
    let sender = PrincipalData::parse(&sender.to_string()).expect("sender");
    let value = sys
        .node
        .lock()
        .chain
        .simulate_public(&sender, &id, call.function, &args)
        .expect("storage")
        .unwrap_or_else(|e| panic!("{}: runtime error {e}", call.function));
    let mut bytes = Vec::new();
    value.consensus_serialize(&mut bytes).expect("serialize");
    match ClarityValue::deserialize(&bytes).expect("our codec") {
        ClarityValue::Response(Ok(_)) => Ok(()),
        ClarityValue::Response(Err(e)) => match *e {
            ClarityValue::UInt(code) => Err(code as u32),
            other => panic!("{}: error value {other:?}", call.function),
        },
        other => panic!("{}: not a response: {other:?}", call.function),
    }
}

/// A fresh 32-byte hash (never anchored).
fn fresh_hash(rng: &mut impl Rng) -> [u8; 32] {
    rng.gen()
}

/// Submits `call` from `who` and mines it, whatever the contract answers
/// (a refused call is part of the random walk too).
async fn attempt(sys: &System, who: &str, call: ContractCall) {
    sys.tx(who, call).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_the_api_decides_as_the_contract_on_random_chain_states() {
    let sys = super::start().await;
    let patient = sys.principal("wallet_1");
    let subjects = ["wallet_2", "wallet_3", "faucet"];
    let callers = ["wallet_1", "wallet_2", "wallet_3", "faucet", "deployer"];
    // Short emergency overrides, so expiry happens within the walk.
    attempt(
        &sys,
        "deployer",
        owner_call(ContractName::PatientConsent, "set-emergency-timeout", vec![ClarityValue::UInt(3)]),
    )
    .await;
    // wallet_2 writes the records the walk reads: it needs standing first.
    let (_, writer) = sys.consent_provider("wallet_2").await;
    sys.tx("wallet_1", ContractCall::grant_consent(&writer, DataType::MentalHealth, GrantDuration::UntilRevoked)).await;
    let mut records = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    for ty in [RecordType::LabResults, RecordType::MentalHealth] {
        let id: [u8; 16] = rng.gen();
        let call = ContractCall::create_record(id, &patient, ty, fresh_hash(&mut rng), None, 1).expect("call");
        sys.tx("wallet_2", call).await;
        assert!(sys.reader.record_access(&RecordId(id), &patient).expect("read").is_some(), "record {ty:?} created");
        records.push((id, ty));
    }

    let mut seen: BTreeSet<(Operation, Result<(), u32>)> = BTreeSet::new();
    let (mut paused, mut deceased) = (false, false);
    let steps = 160;
    for step in 0..steps {
        let subject = sys.principal(subjects[rng.gen_range(0..subjects.len())]);
        let data_type = [DataType::LabResults, DataType::MentalHealth, DataType::AllStandard][rng.gen_range(0..3)];
        let duration = if rng.gen_bool(0.5) {
            GrantDuration::UntilRevoked
        } else {
            GrantDuration::blocks(rng.gen_range(1..5)).expect("duration")
        };
        let p = ClarityValue::Principal(subject.clone());
        // Half-way, the lab record is archived for good (by a provider
        // given full standing first), so the second half also walks an
        // archived record.
        let choice = if step == steps / 2 { 15 } else { rng.gen_range(0..17) };
        let description = match choice {
            0 => {
                let args = vec![p, ClarityValue::Buffer(vec![7; 32])];
                attempt(&sys, "deployer", owner_call(ContractName::RecordManagement, "register-provider", args)).await;
                "register provider"
            }
            1 => {
                let args = vec![p, ClarityValue::Bool(rng.gen_bool(0.3))];
                attempt(&sys, "deployer", owner_call(ContractName::RecordManagement, "set-provider-active", args))
                    .await;
                "provider active flag"
            }
            2 | 3 => {
                attempt(&sys, "wallet_1", ContractCall::grant_consent(&subject, data_type, duration)).await;
                "grant consent"
            }
            4 => {
                attempt(&sys, "wallet_1", ContractCall::revoke_consent(&subject, data_type)).await;
                "revoke consent"
            }
            5 | 6 => {
                let level = [AccessLevel::Read, AccessLevel::Write, AccessLevel::Admin][rng.gen_range(0..3)];
                let call = ContractCall::grant_provider_access(&subject, level, duration).expect("call");
                attempt(&sys, "wallet_1", call).await;
                "grant access level"
            }
            7 => {
                attempt(&sys, "wallet_1", ContractCall::revoke_provider_access(&subject)).await;
                "revoke access level"
            }
            8 => {
                let args = vec![p, ClarityValue::Bool(rng.gen_bool(0.7))];
                attempt(&sys, "deployer", owner_call(ContractName::PatientConsent, "set-emergency-responder", args))
                    .await;
                "emergency responder flag"
            }
            9 => {
                let responder = ["wallet_2", "wallet_3"][rng.gen_range(0..2)];
                attempt(&sys, responder, ContractCall::emergency_override(&patient, 1).expect("call")).await;
                "emergency override"
            }
            10 => {
                advance_burn(&sys, rng.gen_range(0..5)).await;
                "burn blocks pass"
            }
            11 if rng.gen_bool(0.4) => {
                paused = !paused;
                let f = if paused { "pause" } else { "unpause" };
                attempt(&sys, "deployer", owner_call(ContractName::PatientConsent, f, vec![])).await;
                "pause toggled"
            }
            12 if rng.gen_bool(0.3) => {
                deceased = !deceased;
                let args = vec![ClarityValue::Principal(patient.clone()), ClarityValue::Bool(deceased)];
                attempt(&sys, "deployer", owner_call(ContractName::PatientConsent, "set-deceased", args)).await;
                "deceased toggled"
            }
            13 | 14 => {
                let (id, _) = records[rng.gen_range(0..records.len())];
                let f = ["finalize-record", "unlock-record", "archive-record"][rng.gen_range(0..3)];
                let args = vec![ClarityValue::Buffer(id.to_vec())];
                let who = ["wallet_2", "wallet_3"][rng.gen_range(0..2)];
                attempt(&sys, who, owner_call(ContractName::RecordManagement, f, args)).await;
                "record lifecycle"
            }
            15 => {
                // Full standing for one provider, and the chain running:
                // without it the walk would rarely see an allowed admin
                // operation.
                let who = ["wallet_2", "wallet_3"][rng.gen_range(0..2)];
                let p = sys.principal(who);
                let owner = |f, args| owner_call(ContractName::RecordManagement, f, args);
                let pv = ClarityValue::Principal(p.clone());
                attempt(
                    &sys,
                    "deployer",
                    owner("register-provider", vec![pv.clone(), ClarityValue::Buffer(vec![7; 32])]),
                )
                .await;
                attempt(&sys, "deployer", owner("set-provider-active", vec![pv, ClarityValue::Bool(true)])).await;
                for dt in [DataType::AllStandard, DataType::MentalHealth] {
                    attempt(&sys, "wallet_1", ContractCall::grant_consent(&p, dt, GrantDuration::UntilRevoked)).await;
                }
                let call = ContractCall::grant_provider_access(&p, AccessLevel::Admin, GrantDuration::UntilRevoked);
                attempt(&sys, "wallet_1", call.expect("call")).await;
                if paused {
                    paused = false;
                    attempt(&sys, "deployer", owner_call(ContractName::PatientConsent, "unpause", vec![])).await;
                }
                if deceased {
                    deceased = false;
                    let args = vec![ClarityValue::Principal(patient.clone()), ClarityValue::Bool(false)];
                    attempt(&sys, "deployer", owner_call(ContractName::PatientConsent, "set-deceased", args)).await;
                }
                if step == steps / 2 {
                    let args = vec![ClarityValue::Buffer(records[0].0.to_vec())];
                    attempt(&sys, who, owner_call(ContractName::RecordManagement, "archive-record", args)).await;
                    let (archived, _) =
                        sys.reader.record_access(&RecordId(records[0].0), &p).expect("read").expect("record");
                    assert_eq!(archived.status, medanchor_contracts::types::RecordStatus::Archived);
                }
                "full standing"
            }
            _ => {
                // Break the glass: a credentialed responder's override.
                let who = ["wallet_2", "wallet_3"][rng.gen_range(0..2)];
                let args = vec![ClarityValue::Principal(sys.principal(who)), ClarityValue::Bool(true)];
                attempt(&sys, "deployer", owner_call(ContractName::PatientConsent, "set-emergency-responder", args))
                    .await;
                attempt(&sys, who, ContractCall::emergency_override(&patient, 1).expect("call")).await;
                "break the glass"
            }
        };

        for caller in callers {
            let who = sys.principal(caller);
            for (id, ty) in &records {
                let (record, facts) =
                    sys.reader.record_access(&RecordId(*id), &who).expect("facts").expect("record indexed");
                for op in Operation::ALL {
                    let call = match op {
                        Operation::Read => owner_call(
                            ContractName::RecordManagement,
                            "get-record",
                            vec![ClarityValue::Buffer(id.to_vec())],
                        ),
                        Operation::Create => {
                            ContractCall::create_record(rng.gen(), &patient, *ty, fresh_hash(&mut rng), None, 1)
                                .expect("call")
                        }
                        Operation::Update => {
                            ContractCall::update_record(*id, record.version, fresh_hash(&mut rng), None)
                        }
                        lifecycle => owner_call(
                            ContractName::RecordManagement,
                            lifecycle.function(),
                            vec![ClarityValue::Buffer(id.to_vec())],
                        ),
                    };
                    let ours = match op {
                        Operation::Create => authz::authorize(op, &facts),
                        _ => authz::authorize_record(op, &record, &facts),
                    }
                    .map(|_| ())
                    .map_err(|e| e.code());
                    let theirs = contract_answer(&sys, &who, &call);
                    assert_eq!(
                        ours, theirs,
                        "step {step} ({description}): {caller} {op:?} on {ty:?} — API {ours:?}, contract {theirs:?}\nfacts {facts:?}\nrecord {record:?}"
                    );
                    seen.insert((op, ours));
                }
            }
        }
    }
    // The walk must have reached the branches, or the comparison proves
    // little: every operation allowed and refused, and many distinct errors.
    for op in Operation::ALL {
        assert!(seen.contains(&(op, Ok(()))), "{op:?} never allowed: {seen:?}");
        assert!(seen.iter().any(|(o, r)| *o == op && r.is_err()), "{op:?} never refused");
    }
    let errors: BTreeSet<u32> = seen.iter().filter_map(|(_, r)| r.err()).collect();
    // Every branch of `authorize` and of the record asserts.
    for code in [107, 108, 109, 110, 111, 115, 116, 200, 201, 203, 205, 206, 207, 213, 214, 215, 217] {
        assert!(errors.contains(&code), "refusal u{code} never reached: {errors:?}");
    }
}

/// A share must not let a provider read what the patient revoked on-chain,
/// even when an expired emergency override (or enhanced protection) is
/// what `check-consent` reports first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_never_overrides_a_revocation_hidden_behind_an_override() {
    let sys = super::start().await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let responder = sys.principal("wallet_3");
    sys.register_provider("wallet_3").await;
    let writer_token = sys.sign_in("wallet_2").await;
    sys.tx(
        "wallet_1",
        ContractCall::grant_consent(&sys.principal("wallet_2"), DataType::MentalHealth, GrantDuration::UntilRevoked),
    )
    .await;
    let lab = sys.write_record(&writer_token, "lab-results").await;
    let mental = sys.write_record(&writer_token, "mental-health").await;
    // wallet_3 had consent for both, and lost it.
    for dt in [DataType::LabResults, DataType::MentalHealth] {
        sys.tx("wallet_1", ContractCall::grant_consent(&responder, dt, GrantDuration::UntilRevoked)).await;
        sys.tx("wallet_1", ContractCall::revoke_consent(&responder, dt)).await;
    }
    // It is an emergency responder with an override: active, it covers lab
    // results (the break-glass rule of the chain) but mental health is
    // enhanced protection.
    for (f, args) in [
        ("set-emergency-timeout", vec![ClarityValue::UInt(4)]),
        ("set-emergency-responder", vec![ClarityValue::Principal(responder.clone()), ClarityValue::Bool(true)]),
    ] {
        sys.tx("deployer", owner_call(ContractName::PatientConsent, f, args)).await;
    }
    sys.tx("wallet_3", ContractCall::emergency_override(&patient, 1).expect("call")).await;

    let patient_token = sys.sign_in("wallet_1").await;
    let reader_token = sys.sign_in("wallet_3").await;
    let share = sys.make_share(&patient_token, json!({ "data_types": ["lab-results", "mental-health"] })).await;
    assert_eq!(share.status, 201, "{}", share.body);
    let code = share.body["code"].as_str().expect("code").to_string();
    let redeemed = sys.redeem(&reader_token, &patient, &code).await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.body);
    let grant = redeemed.body["grant"].as_str().expect("grant").to_string();
    let read = |id: String, grant: Option<String>| {
        let sys = &sys;
        let token = reader_token.clone();
        async move { sys.send("GET", &format!("/v1/records/{id}"), &token, None, grant.as_deref()).await }
    };
    // Mental health: check-consent says ERR-ENHANCED-PROTECTION; through
    // the share the revocation still wins.
    let a = read(mental.clone(), Some(grant.clone())).await;
    assert_eq!((a.status, a.body["reason"]["name"].as_str()), (403, Some("ERR-CONSENT-REVOKED")), "{}", a.body);
    // Once the override expires, check-consent says ERR-EMERGENCY-EXPIRED
    // for both; the revocation still wins through the share.
    advance_burn(&sys, 6).await;
    for id in [&lab, &mental] {
        let a = read(id.clone(), None).await;
        assert_eq!((a.status, a.body["reason"]["name"].as_str()), (403, Some("ERR-EMERGENCY-EXPIRED")), "{}", a.body);
        let a = read(id.clone(), Some(grant.clone())).await;
        assert_eq!((a.status, a.body["reason"]["name"].as_str()), (403, Some("ERR-CONSENT-REVOKED")), "{}", a.body);
    }
    // What the redemption reported agrees.
    let again = sys.make_share(&patient_token, json!({ "data_types": ["lab-results"] })).await;
    let code = again.body["code"].as_str().expect("code").to_string();
    let redeemed = sys.redeem(&reader_token, &patient, &code).await;
    assert_eq!(
        redeemed.body["access"][0],
        json!({ "data_type": "lab-results", "allowed": false, "reason": "ERR-CONSENT-REVOKED" })
    );
}

/// One challenge, one session: the same signed challenge sent twice at
/// once gives exactly one token (the read and the delete of a stored
/// challenge were two steps: 20 of 30 races gave two tokens). Asking for
/// challenges stores nothing, and an altered nonce is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_signs_in_once_and_asking_for_one_stores_nothing() {
    let sys = super::start().await;
    let key = sys.key("wallet_1").clone();
    let principal = sys.principal("wallet_1").to_string();
    let post = |path: &'static str, body: serde_json::Value| {
        let request = sys.http.post(format!("{}{path}", sys.api)).json(&body);
        async move {
            let r = request.send().await.expect("post");
            (r.status().as_u16(), r.json::<serde_json::Value>().await.expect("json"))
        }
    };
    let (db, _) = sys.state.keys();
    let stored = || db.scan(medanchor_api::db::Cf::Challenges, &[]).expect("scan").len();
    let before = stored();
    for _ in 0..200 {
        let (status, _) = post("/v1/auth/challenge", json!({ "principal": principal })).await;
        assert_eq!(status, 200);
    }
    assert_eq!(stored(), before, "an anonymous caller cannot grow the database");

    for round in 0..30 {
        let (_, c) = post("/v1/auth/challenge", json!({ "principal": principal })).await;
        let signature = key.sign_message(c["message"].as_str().expect("message").as_bytes());
        let body = json!({ "nonce": c["nonce"], "signature": signature });
        let (a, b) = tokio::join!(post("/v1/auth/verify", body.clone()), post("/v1/auth/verify", body.clone()));
        let tokens = [&a, &b].iter().filter(|(status, v)| *status == 200 && v["token"].is_string()).count();
        assert_eq!(tokens, 1, "round {round}: {a:?} {b:?}");
        let (status, _) = post("/v1/auth/verify", body).await;
        assert_eq!(status, 401, "round {round}: replayed");
    }
    assert_eq!(stored(), before + 30, "only used challenges are remembered");

    // A nonce altered anywhere (its times, its principal) is not ours.
    let (_, c) = post("/v1/auth/challenge", json!({ "principal": principal })).await;
    let nonce = c["nonce"].as_str().expect("nonce").to_string();
    let signature = key.sign_message(c["message"].as_str().expect("message").as_bytes());
    let mut later = nonce.clone().into_bytes();
    later[40] = if later[40] == b'f' { b'e' } else { b'f' };
    let later = String::from_utf8(later).expect("ascii");
    let other = format!("{}{}", &nonce[..96], sys.principal("wallet_2"));
    for forged in [later, other, "00".repeat(60), String::new()] {
        let (status, v) = post("/v1/auth/verify", json!({ "nonce": forged, "signature": signature })).await;
        assert_eq!((status, v["code"].as_str()), (401, Some("unauthorized")), "{forged}: {v}");
    }
    // Used challenges are forgotten once expired (the sweeper's job).
    assert_eq!(sys.state.housekeeping().expect("sweep"), 0, "none expired yet");
}
