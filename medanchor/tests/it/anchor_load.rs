//! Anchoring under load survives a crash: three custodial providers write
//! 600 records through the API of `medanchor up` at full speed — far past
//! the node's 25 pending transactions per sender — then the whole process
//! is killed with SIGKILL (the devnet's mempool goes with it). After a
//! restart every acknowledged record ends anchored on-chain with the
//! version and hash the API shows: none failed for the node's chaining
//! limit, none pending for ever with a txid the node forgot.

use std::time::{Duration, Instant};

use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_wallet::{ContractCall, GrantDuration, RpcClient};
use serde_json::{json, Value};

use super::verify::{address, free_port, operator_authorized, rt, sign_in, tx, up_log, Ports, Up};

const PROVIDERS: [&str; 3] = ["wallet_2", "wallet_3", "deployer"];
const RECORDS: usize = 600;

#[test]
fn six_hundred_custodial_writes_then_kill_9_all_end_anchored_with_the_apis_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let custodial: Vec<&str> = PROVIDERS.iter().flat_map(|p| ["--custodial", p]).collect();
    let up = Up::start_with(root, &ports, &custodial);
    let node = RpcClient::new(&rpc).expect("rpc");
    let patient = address("wallet_1");
    let rt = rt();

    let ids: Vec<(String, String)> = rt.block_on(async {
        operator_authorized(&node, root).await;
        tx(&rpc, "wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
        for p in PROVIDERS {
            let provider: medanchor_contracts::Principal = address(p).parse().expect("principal");
            let register = ContractCall {
                contract: ContractName::RecordManagement,
                function: "register-provider",
                args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![2; 32])],
            };
            tx(&rpc, "deployer", register).await;
            tx(
                &rpc,
                "wallet_1",
                ContractCall::grant_consent(&provider, DataType::LabResults, GrantDuration::UntilRevoked),
            )
            .await;
            let access =
                ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked);
            tx(&rpc, "wallet_1", access.expect("call")).await;
        }

        // 600 creates, 200 per provider, 24 in flight at a time.
        let http = reqwest::Client::new();
        let mut tokens = Vec::new();
        for p in PROVIDERS {
            tokens.push(sign_in(&api, p).await);
        }
        let url = format!("{api}/v1/patients/{patient}/records");
        let mut ids = Vec::with_capacity(RECORDS);
        let mut in_flight = tokio::task::JoinSet::new();
        for i in 0..RECORDS {
            if in_flight.len() == 24 {
                ids.push(in_flight.join_next().await.expect("task").expect("join"));
            }
            let (http, url, token) = (http.clone(), url.clone(), tokens[i % PROVIDERS.len()].clone());
            in_flight.spawn(async move {
                let body = json!({ "record_type": "lab-results", "content": { "sample": i } });
                let r = http.post(&url).bearer_auth(&token).json(&body).send().await.expect("post");
                let status = r.status().as_u16();
                let v: Value = r.json().await.expect("json");
                assert_eq!(status, 202, "{v}");
                assert_ne!(v["anchor"]["status"], "failed", "a transient refusal is not a failure: {v}");
                (
                    v["record_id"].as_str().expect("id").to_string(),
                    v["anchor"]["data_hash"].as_str().expect("hash").to_string(),
                )
            });
        }
        while let Some(r) = in_flight.join_next().await {
            ids.push(r.expect("join"));
        }
        ids
    });
    assert_eq!(ids.len(), RECORDS);

    // Killed mid-flight: versions in the mempool, queued, or in between.
    up.kill();
    let _up = Up::start_with(root, &ports, &custodial);

    rt.block_on(async {
        let http = reqwest::Client::new();
        let token = sign_in(&api, "wallet_1").await;
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut waiting = ids.clone();
        while !waiting.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} records never anchored, e.g. {:?}: {}",
                waiting.len(),
                waiting[0],
                up_log(root)
            );
            let mut still = Vec::new();
            for (id, hash) in waiting {
                let r: Value = http
                    .get(format!("{api}/v1/records/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("get")
                    .json()
                    .await
                    .expect("json");
                match r["anchor"]["status"].as_str() {
                    Some("anchored") => assert_eq!(
                        (r["version"].as_u64(), r["anchor"]["data_hash"].as_str()),
                        (Some(1), Some(hash.as_str()))
                    ),
                    Some("pending") => still.push((id, hash)),
                    other => panic!("record {id} ended {other:?}: {r}"),
                }
            }
            waiting = still;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // The resender did the work (past the chaining limit, after the
        // crash), not luck.
        assert!(up_log(root).contains("sent pending versions again"), "{}", up_log(root));
        // The chain itself names each hash's record and version.
        for (id, hash) in &ids {
            let raw = hex::decode(hash.trim_start_matches("0x")).expect("hex");
            let anchor = node
                .call_read_only(
                    DEPLOYER_ADDRESS,
                    "record-management",
                    "get-anchor",
                    DEPLOYER_ADDRESS,
                    &[ClarityValue::Buffer(raw)],
                )
                .await
                .expect("get-anchor");
            let ClarityValue::Optional(Some(entry)) = anchor else { panic!("{hash} is not anchored: {anchor:?}") };
            let ClarityValue::Tuple(fields) = *entry else { panic!("{entry:?}") };
            assert_eq!(fields.get("record-id"), Some(&ClarityValue::Buffer(hex::decode(id).expect("hex"))));
            assert_eq!(fields.get("version"), Some(&ClarityValue::UInt(1)));
        }
    });
}
