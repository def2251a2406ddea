//! The read authorization branches over HTTP, as one table run in order
//! against a live chain: each row changes the chain (transactions, burn
//! blocks), reads a record as someone, and checks the HTTP status, the
//! contract's error name in the problem body, and the audit entry written
//! for the attempt (outcome, method, reason).

use std::time::Duration;

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_indexer::ChainReader;
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::System;

/// A call to one of the owner's functions (not in `ContractCall`'s API).
fn owner_call(contract: ContractName, function: &'static str, args: Vec<ClarityValue>) -> ContractCall {
    ContractCall { contract, function, args }
}

/// Mines one block that advances the burn height by `1 + extra`, and waits
/// for the indexer, so expiries measured in burn blocks pass.
pub(crate) async fn advance_burn(sys: &System, extra: u32) {
    sys.node.mine_blocks(1, extra).await.expect("mine");
    let tip = sys.node.lock().chain.tip().height;
    for _ in 0..400 {
        if sys.reader.status().expect("status").tip_height == Some(tip) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("indexer did not reach {tip}");
}

/// Creates a record as the custodial provider `wallet_2`; returns its id.
pub(crate) async fn create(sys: &System, token: &str, patient: &Principal, record_type: &str) -> String {
    let r = sys
        .http
        .post(format!("{}/v1/patients/{patient}/records", sys.api))
        .bearer_auth(token)
        .json(&json!({ "record_type": record_type, "content": { "note": record_type } }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.expect("json");
    body["record_id"].as_str().expect("id").to_string()
}

/// The last audit entry, as the auditor sees it.
async fn last_audit(sys: &System, auditor: &str) -> Value {
    let (_, all) = sys.get("/v1/audit/entries?limit=1000", auditor).await;
    all["entries"].as_array().expect("entries").last().expect("an entry")["entry"].clone()
}

/// `register-provider` by the owner.
fn register(provider: &Principal) -> ContractCall {
    owner_call(
        ContractName::RecordManagement,
        "register-provider",
        vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![4; 32])],
    )
}

/// `set-provider-active` by the owner.
fn set_active(provider: &Principal, active: bool) -> ContractCall {
    owner_call(
        ContractName::RecordManagement,
        "set-provider-active",
        vec![ClarityValue::Principal(provider.clone()), ClarityValue::Bool(active)],
    )
}

/// What changes before a row's read.
enum Setup {
    Nothing,
    Tx(&'static str, ContractCall),
    Txs(Vec<(&'static str, ContractCall)>),
    Burn(u32),
}

/// One branch of the table.
struct Row {
    name: &'static str,
    setup: Setup,
    reader: &'static str,
    /// `lab` (lab-results) or `mental` (mental-health).
    record: &'static str,
    status: u16,
    error: Option<&'static str>,
    method: Option<&'static str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_authorization_branches_are_precise_and_audited() {
    let sys = super::start().await;
    let (patient, provider, responder) =
        (sys.principal("wallet_1"), sys.principal("wallet_2"), sys.principal("wallet_3"));
    sys.tx(
        "deployer",
        owner_call(
            ContractName::RecordManagement,
            "register-provider",
            vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![2; 32])],
        ),
    )
    .await;
    sys.tx("wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
    sys.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::LabResults, GrantDuration::UntilRevoked)).await;
    // Mental-health consent for a few burn blocks only: row "expired".
    sys.tx(
        "wallet_1",
        ContractCall::grant_consent(&provider, DataType::MentalHealth, GrantDuration::blocks(12).expect("duration")),
    )
    .await;
    sys.tx(
        "wallet_1",
        ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked).expect("call"),
    )
    .await;
    let provider_token = sys.sign_in("wallet_2").await;
    let auditor_token = sys.sign_in("faucet").await;
    let lab = create(&sys, &provider_token, &patient, "lab-results").await;
    let mental = create(&sys, &provider_token, &patient, "mental-health").await;
    sys.mine().await;
    assert_eq!(medanchor_api::app::track_once(&sys.state).expect("track"), 2);

    let deployer = "deployer";
    let table = vec![
        Row {
            name: "no consent",
            setup: Setup::Nothing,
            reader: "wallet_3",
            record: "lab",
            status: 403,
            error: Some("ERR-NO-CONSENT"),
            method: None,
        },
        Row {
            name: "consent",
            setup: Setup::Nothing,
            reader: "wallet_2",
            record: "lab",
            status: 200,
            error: None,
            method: Some("consent"),
        },
        Row {
            name: "the patient",
            setup: Setup::Nothing,
            reader: "wallet_1",
            record: "mental",
            status: 200,
            error: None,
            method: Some("self"),
        },
        Row {
            name: "consent before its expiry",
            setup: Setup::Nothing,
            reader: "wallet_2",
            record: "mental",
            status: 200,
            error: None,
            method: Some("consent"),
        },
        Row {
            name: "consent expired by burn height",
            setup: Setup::Burn(14),
            reader: "wallet_2",
            record: "mental",
            status: 403,
            error: Some("ERR-CONSENT-EXPIRED"),
            method: None,
        },
        Row {
            // The contract's `authorize` wants a registered, active
            // provider even under an override: a responder who is not one
            // reads nothing (the API used to let it read).
            name: "emergency override, responder not a registered provider",
            setup: Setup::Txs(vec![
                (
                    deployer,
                    owner_call(ContractName::PatientConsent, "set-emergency-timeout", vec![ClarityValue::UInt(6)]),
                ),
                (
                    deployer,
                    owner_call(
                        ContractName::PatientConsent,
                        "set-emergency-responder",
                        vec![ClarityValue::Principal(responder.clone()), ClarityValue::Bool(true)],
                    ),
                ),
                ("wallet_3", ContractCall::emergency_override(&patient, 1).expect("call")),
            ]),
            reader: "wallet_3",
            record: "lab",
            status: 403,
            error: Some("ERR-PROVIDER-NOT-FOUND"),
            method: None,
        },
        Row {
            name: "emergency override active",
            setup: Setup::Tx(deployer, register(&responder)),
            reader: "wallet_3",
            record: "lab",
            status: 200,
            error: None,
            method: Some("emergency"),
        },
        Row {
            // The override covers standard data; mental health is enhanced
            // protection unless the patient's preferences allow it.
            name: "override, wrong data type",
            setup: Setup::Nothing,
            reader: "wallet_3",
            record: "mental",
            status: 403,
            error: Some("ERR-ENHANCED-PROTECTION"),
            method: None,
        },
        Row {
            name: "emergency override expired",
            setup: Setup::Burn(8),
            reader: "wallet_3",
            record: "lab",
            status: 403,
            error: Some("ERR-EMERGENCY-EXPIRED"),
            method: None,
        },
        Row {
            name: "consent but no access level (revoked)",
            setup: Setup::Tx("wallet_1", ContractCall::revoke_provider_access(&provider)),
            reader: "wallet_2",
            record: "lab",
            status: 403,
            error: Some("ERR-NO-PROVIDER-ACCESS"),
            method: None,
        },
        Row {
            name: "read access for two burn blocks",
            setup: Setup::Txs(vec![(
                "wallet_1",
                ContractCall::grant_provider_access(
                    &provider,
                    AccessLevel::Read,
                    GrantDuration::blocks(2).expect("duration"),
                )
                .expect("call"),
            )]),
            reader: "wallet_2",
            record: "lab",
            status: 200,
            error: None,
            method: Some("consent"),
        },
        Row {
            name: "access level expired by burn height",
            setup: Setup::Burn(3),
            reader: "wallet_2",
            record: "lab",
            status: 403,
            error: Some("ERR-PROVIDER-ACCESS-EXPIRED"),
            method: None,
        },
        Row {
            name: "deactivated provider",
            setup: Setup::Txs(vec![
                (
                    "wallet_1",
                    ContractCall::grant_provider_access(&provider, AccessLevel::Read, GrantDuration::UntilRevoked)
                        .expect("call"),
                ),
                (deployer, set_active(&provider, false)),
            ]),
            reader: "wallet_2",
            record: "lab",
            status: 403,
            error: Some("ERR-PROVIDER-INACTIVE"),
            method: None,
        },
        Row {
            name: "reactivated, read access",
            setup: Setup::Tx(deployer, set_active(&provider, true)),
            reader: "wallet_2",
            record: "lab",
            status: 200,
            error: None,
            method: Some("consent"),
        },
        Row {
            name: "consent to someone who is not a provider",
            setup: Setup::Tx(
                "wallet_1",
                ContractCall::grant_consent(
                    &sys.principal("faucet"),
                    DataType::LabResults,
                    GrantDuration::UntilRevoked,
                ),
            ),
            reader: "faucet",
            record: "lab",
            status: 403,
            error: Some("ERR-PROVIDER-NOT-FOUND"),
            method: None,
        },
        Row {
            name: "revoked",
            setup: Setup::Tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::LabResults)),
            reader: "wallet_2",
            record: "lab",
            status: 403,
            error: Some("ERR-CONSENT-REVOKED"),
            method: None,
        },
        Row {
            name: "paused",
            setup: Setup::Tx(deployer, owner_call(ContractName::PatientConsent, "pause", vec![])),
            reader: "wallet_1",
            record: "lab",
            status: 403,
            error: Some("ERR-PAUSED"),
            method: None,
        },
        Row {
            name: "deceased patient",
            setup: Setup::Txs(vec![
                (deployer, owner_call(ContractName::PatientConsent, "unpause", vec![])),
                (
                    deployer,
                    owner_call(
                        ContractName::PatientConsent,
                        "set-deceased",
                        vec![ClarityValue::Principal(patient.clone()), ClarityValue::Bool(true)],
                    ),
                ),
            ]),
            reader: "wallet_1",
            record: "lab",
            status: 403,
            error: Some("ERR-PATIENT-DECEASED"),
            method: None,
        },
    ];

    let patient_path = format!("/v1/patients/{patient}/records");
    for row in table {
        match row.setup {
            Setup::Nothing => {}
            Setup::Tx(who, call) => sys.tx(who, call).await,
            Setup::Txs(calls) => {
                for (who, call) in calls {
                    sys.tx(who, call).await;
                }
            }
            Setup::Burn(n) => advance_burn(&sys, n).await,
        }
        let id = if row.record == "lab" { &lab } else { &mental };
        let token = sys.sign_in(row.reader).await;
        let (status, body) = sys.get(&format!("/v1/records/{id}"), &token).await;
        assert_eq!(status, row.status, "{}: {body}", row.name);
        assert_eq!(body["reason"]["name"].as_str(), row.error, "{}: {body}", row.name);
        let entry = last_audit(&sys, &auditor_token).await;
        assert_eq!(entry["action"], "record.read", "{}: {entry}", row.name);
        assert_eq!(entry["actor"], sys.principal(row.reader).to_string(), "{}", row.name);
        assert_eq!(entry["record_id"].as_str(), Some(id.as_str()), "{}", row.name);
        let outcome = if row.status == 200 { "allowed" } else { "denied" };
        assert_eq!(entry["outcome"], outcome, "{}: {entry}", row.name);
        assert_eq!(entry["method"].as_str(), row.method, "{}: {entry}", row.name);
        assert_eq!(entry["reason"].as_str(), row.error, "{}: {entry}", row.name);
        // The version history and the patient's list follow the same rule.
        let (status, body) = sys.get(&format!("/v1/records/{id}/versions"), &token).await;
        assert_eq!(status, row.status, "{} (versions): {body}", row.name);
        assert_eq!(body["reason"]["name"].as_str(), row.error, "{} (versions): {body}", row.name);
        let (status, list) = sys.get(&patient_path, &token).await;
        assert_eq!(status, 200, "{} (list): {list}", row.name);
        let listed = list["items"].as_array().expect("items").iter().any(|r| r["record_id"] == format!("0x{id}"));
        assert_eq!(listed, row.status == 200, "{} (list): {list}", row.name);
    }
}
