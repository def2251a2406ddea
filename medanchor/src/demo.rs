//! `medanchor demo`: the whole story against a running `medanchor up`,
//! each step printed. The patient (`wallet_1`) registers and grants consent
//! from their own wallet; the provider (`wallet_2`, custodial in `up`)
//! writes and reads a record through the API; the patient revokes and the
//! provider is refused; the patient reads who accessed their data; an
//! auditor verifies the record against the chain without trusting the API,
//! and a tampered copy of the ciphertext is caught.
//!
//! Devnet only: it signs with the public test keys of Devnet.toml.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_wallet::accounts::{parse_accounts, DEFAULT_DEVNET_TOML};
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::{ContractCall, GrantDuration, RpcClient, Wallet};
use serde_json::{json, Value};

/// Options of `medanchor demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The devnet node's RPC.
    #[arg(long, default_value = "http://127.0.0.1:20443")]
    node: String,
    /// The API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
}

/// How long one step may wait for the chain, the indexer or the tracker.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs the demo; an error (or a step that does not behave) is a non-zero exit.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(demo(&Demo::new(args)?))
}

struct Demo {
    node: String,
    api: String,
    http: reqwest::Client,
    accounts: Vec<medanchor_wallet::accounts::DevnetAccount>,
}

impl Demo {
    fn new(args: DemoArgs) -> anyhow::Result<Demo> {
        let trim = |s: &str| s.trim().trim_end_matches('/').to_string();
        Ok(Demo {
            node: trim(&args.node),
            api: trim(&args.api),
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?,
            accounts: parse_accounts(DEFAULT_DEVNET_TOML, "embedded Devnet.toml")?,
        })
    }

    fn key(&self, name: &str) -> anyhow::Result<&StacksKey> {
        self.accounts.iter().find(|a| a.name == name).map(|a| &a.key).with_context(|| format!("no account {name}"))
    }

    fn principal(&self, name: &str) -> anyhow::Result<Principal> {
        Ok(self.key(name)?.address(TESTNET_SINGLESIG).to_string().parse()?)
    }

    /// Signs `call` with `name`'s key, waits until mined; `tolerated` is a
    /// contract error that means "already done" (so the demo can run twice).
    async fn tx(&self, name: &str, call: ContractCall, tolerated: Option<&str>) -> anyhow::Result<()> {
        let wallet = Wallet::connect(self.key(name)?.clone(), RpcClient::new(&self.node)?, DEPLOYER_ADDRESS).await?;
        let sent = wallet.submit(&call, None).await.with_context(|| format!("sending {}", call.function))?;
        let outcome = wallet.wait(&sent.txid, STEP_TIMEOUT).await?;
        let error = outcome.contract_error().map(|e| e.constant().to_string());
        match (outcome.is_success(), error) {
            (true, _) => println!("   {name}: {} mined (tx {})", call.function, sent.txid),
            (false, Some(e)) if Some(e.as_str()) == tolerated => {
                println!("   {name}: {} — already done ({e})", call.function)
            }
            (false, e) => bail!("{} from {name} failed: {}", call.function, e.unwrap_or(outcome.status)),
        }
        Ok(())
    }

    /// Signs in to the API as Stacks wallets sign messages.
    async fn sign_in(&self, name: &str) -> anyhow::Result<String> {
        crate::client::sign_in(&self.http, &self.api, self.key(name)?).await
    }

    async fn get(&self, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
        let r = self.http.get(format!("{}{path}", self.api)).bearer_auth(token).send().await?;
        Ok((r.status().as_u16(), r.json().await.unwrap_or(Value::Null)))
    }
}

/// Polls `f` until it returns `Some`, or fails after [`STEP_TIMEOUT`]
/// (the indexer and the tracker follow the chain a moment behind).
async fn until<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(t) = f().await? {
            return Ok(t);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn demo(d: &Demo) -> anyhow::Result<()> {
    let (patient, provider) = (d.principal("wallet_1")?, d.principal("wallet_2")?);
    println!("medanchor demo: node {}, API {}", d.node, d.api);
    println!("   patient  wallet_1 {patient}\n   provider wallet_2 {provider} (custodial key held by the API)");

    println!("\n1. The contract owner registers the provider; the patient registers and consents from their wallet");
    let register = ContractCall {
        contract: ContractName::RecordManagement,
        function: "register-provider",
        args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![0xd3; 32])],
    };
    d.tx("deployer", register, Some("ERR-PROVIDER-EXISTS")).await?;
    let patient_id = medanchor_wallet::actions::new_patient_id();
    d.tx("wallet_1", ContractCall::register_patient(patient_id, None, None), Some("ERR-ALREADY-REGISTERED")).await?;
    d.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::LabResults, GrantDuration::UntilRevoked), None)
        .await?;
    let access = ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked)?;
    d.tx("wallet_1", access, None).await?;

    println!("\n2. The provider signs in and writes an encrypted lab result");
    let provider_token = d.sign_in("wallet_2").await?;
    let body = json!({ "record_type": "lab-results", "content": { "test": "HbA1c", "value": 5.4, "unit": "%" } });
    let record = until("the API to see the consent", || async {
        let r = d
            .http
            .post(format!("{}/v1/patients/{patient}/records", d.api))
            .bearer_auth(&provider_token)
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        match status {
            202 => Ok(Some(v)),
            // The indexer has not seen the consent block yet.
            403 => Ok(None),
            _ => bail!("creating the record: HTTP {status}: {v}"),
        }
    })
    .await?;
    let id = record["record_id"].as_str().context("no record id")?.to_string();
    println!("   record {id}: {} (tx {})", record["anchor"]["status"], record["anchor"]["txid"]);

    println!("\n3. The record is anchored; the provider reads it back");
    let read = until("the anchor", || async {
        let (status, v) = d.get(&format!("/v1/records/{id}"), &provider_token).await?;
        Ok((status == 200 && v["anchor"]["status"] == "anchored").then_some(v))
    })
    .await?;
    println!("   anchored in block {} with hash {}", read["anchor"]["block_height"], read["anchor"]["data_hash"]);
    println!("   content: {}", read["content"]);

    println!("\n4. The patient revokes consent from their wallet; the provider is refused");
    d.tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::LabResults), None).await?;
    let refused = until("the refusal", || async {
        let (status, v) = d.get(&format!("/v1/records/{id}"), &provider_token).await?;
        Ok((status == 403).then_some(v))
    })
    .await?;
    println!("   HTTP 403: {}", refused["detail"]);
    if refused["reason"]["name"] != "ERR-CONSENT-REVOKED" {
        bail!("expected ERR-CONSENT-REVOKED, got {refused}");
    }

    println!("\n5. The patient reads who accessed their data");
    let patient_token = d.sign_in("wallet_1").await?;
    let (_, log) = d.get("/v1/audit/entries?limit=1000", &patient_token).await?;
    let entries = log["entries"].as_array().context("no audit entries")?;
    for e in entries.iter().filter(|e| e["entry"]["record_id"] == json!(id)) {
        let e = &e["entry"];
        println!(
            "   {:<14} {:<8} by {} ({}){}",
            e["action"].as_str().unwrap_or(""),
            e["outcome"].as_str().unwrap_or(""),
            e["actor"].as_str().unwrap_or(""),
            e["method"].as_str().unwrap_or("-"),
            e["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default()
        );
    }
    if !entries.iter().any(|e| e["entry"]["action"] == "record.read" && e["entry"]["outcome"] == "denied") {
        bail!("the refused read is not in the patient's access log");
    }

    println!("\n6. An auditor verifies the record against the chain (the API supplies only bytes)");
    let auditor = crate::client::sign_in(&d.http, &d.api, d.key("faucet")?).await?;
    match crate::verify::record(crate::verify::record_args(&id, &d.api, &d.node, &auditor)).await? {
        Ok(verdict) => println!("   VERIFIED: {verdict}"),
        Err(verdict) => bail!("verification failed: {verdict}"),
    }

    println!("\n7. A tampered copy of the ciphertext is detected");
    let url = format!("{}/v1/verify/record/{id}/blob", d.api);
    let mut blob = d.http.get(&url).bearer_auth(&auditor).send().await?.error_for_status()?.bytes().await?.to_vec();
    let last = blob.last_mut().context("empty ciphertext")?;
    *last ^= 1;
    let raw: [u8; 16] =
        hex::decode(&id).ok().and_then(|b| b.try_into().ok()).context("record id is not 16 bytes of hex")?;
    match crate::verify::check_bytes(&d.node, &raw, &blob).await? {
        Ok(verdict) => bail!("a tampered ciphertext verified: {verdict}"),
        Err(verdict) => println!("   tampering detected: {verdict}"),
    }
    println!("\n8. At a clinic desk the patient shares lab results with another provider by a 6-digit code");
    let clinic = d.principal("wallet_3")?;
    let register = ContractCall {
        contract: ContractName::RecordManagement,
        function: "register-provider",
        args: vec![ClarityValue::Principal(clinic.clone()), ClarityValue::Buffer(vec![0xc1; 32])],
    };
    d.tx("deployer", register, Some("ERR-PROVIDER-EXISTS")).await?;
    let patient_session = crate::client::Session::open(&d.api, d.key("wallet_1")?).await?;
    let made = patient_session
        .send(
            "/v1/share/codes",
            Some(&json!({ "data_types": ["lab-results"], "duration": "1h", "single_use": true })),
            &[],
        )
        .await?
        .ok()?;
    let code = made["code"].as_str().context("no code")?.to_string();
    println!("   patient: code {code} for lab-results, 1 h, single use (share {})", made["share"]["id"]);
    let clinic_session = crate::client::Session::open(&d.api, d.key("wallet_3")?).await?;
    let redeem = json!({ "patient": patient.to_string(), "code": code });
    let grant = until("the indexer to see the clinic's registration", || async {
        let a = clinic_session.send("/v1/share/redeem", Some(&redeem), &[]).await?;
        match (a.status, a.body["code"].as_str()) {
            (200, _) => Ok(Some(a.body)),
            (403, Some("provider-required")) => Ok(None),
            _ => a.ok().map(|_| None),
        }
    })
    .await?;
    let token = grant["grant"].as_str().context("no grant")?;
    println!(
        "   wallet_3 {clinic}: redeemed, grant until {}",
        crate::client::utc(grant["expires_ms"].as_u64().unwrap_or(0))
    );
    let read = clinic_session
        .send(&format!("/v1/records/{id}"), None, &[(medanchor_api::app::GRANT_HEADER, token)])
        .await?
        .ok()?;
    println!("   wallet_3 reads the record through the grant: {}", read["content"]);
    let (_, log) = d.get("/v1/audit/entries?limit=1000", &patient_token).await?;
    let used = log["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["entry"]["method"] == "access_code" && e["entry"]["actor"] == json!(clinic.to_string()))
        .count();
    if used < 2 {
        bail!("the code's redemption and read are not in the patient's access log");
    }
    println!("   the patient's access log shows the redemption and the read (method access_code, share id)");

    println!("\ndemo complete");
    Ok(())
}
