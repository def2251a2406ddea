//! An async client for the public Stacks RPC that a wallet needs: any
//! stacks-node (`/v2/…`) plus the two Hiro API routes wallets poll
//! (`/extended/v1/tx/{txid}`, `/extended/v1/address/{addr}/nonces`). Our
//! devnet serves all of them, and so does a testnet endpoint such as
//! Hiro's, so the same client works against both.
//!
//! Why not `stacks-rpc-client` (which the design names): it is a blocking
//! reqwest 0.11 client. It brings no openssl (rustls), but it would make
//! the wallet drive a second HTTP stack on the blocking pool, adds a second
//! secp256k1 implementation and HD-derivation crates that duplicate
//! [`crate::keys`], covers neither of the Hiro routes nor balances, and
//! panics (`unwrap`) on a success response that is not JSON. What it does
//! cover (info, nonce, broadcast, read-only calls) is a few lines here on
//! the workspace's reqwest 0.12.

use std::time::{Duration, Instant};

use medanchor_contracts::{ClarityValue, ContractError, Txid};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::{Error, Result};

/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an unexpected response body an error quotes.
const BODY_EXCERPT: usize = 300;

/// What `/v2/info` says about the node.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeInfo {
    /// The chain id transactions must carry (testnet and devnets
    /// `0x80000000`, mainnet 1).
    pub network_id: u32,
    /// The burn (Bitcoin) height of the tip.
    pub burn_block_height: u64,
    /// The Stacks height of the tip.
    pub stacks_tip_height: u64,
    /// The node's version string.
    #[serde(default)]
    pub server_version: String,
}

/// An account's spendable balance and confirmed nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// Balance in micro-STX.
    pub balance: u128,
    /// Nonce of the next transaction, counting only mined ones.
    pub nonce: u64,
}

/// A transaction that left the mempool (or the time ran out).
#[derive(Debug, Clone, PartialEq)]
pub struct TxOutcome {
    /// The txid.
    pub txid: Txid,
    /// The Hiro API's `tx_status`: `success`, `abort_by_response`,
    /// `abort_by_post_condition`, `dropped_…`.
    pub status: String,
    /// The Stacks block it was mined in.
    pub block_height: Option<u64>,
    /// The burn height of that block.
    pub burn_block_height: Option<u64>,
    /// The result value (`(ok …)` / `(err …)`), when mined.
    pub result: Option<ClarityValue>,
    /// The result as Clarity text, as the node printed it.
    pub result_repr: Option<String>,
}

impl TxOutcome {
    /// Whether the transaction succeeded.
    pub fn is_success(&self) -> bool {
        self.status == "success"
    }

    /// Whether it is still in the mempool.
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }

    /// Whether the node dropped it from its mempool (it will never be
    /// mined as sent).
    pub fn is_dropped(&self) -> bool {
        self.status.starts_with("dropped")
    }

    /// The contract error of an `(err uN)` result, when it is one of ours.
    pub fn contract_error(&self) -> Option<ContractError> {
        contract_error(self.result.as_ref()?)
    }
}

/// The [`ContractError`] of an `(err uN)` value.
pub fn contract_error(value: &ClarityValue) -> Option<ContractError> {
    match value {
        ClarityValue::Response(Err(inner)) => match **inner {
            ClarityValue::UInt(code) => ContractError::from_code(code),
            _ => None,
        },
        _ => None,
    }
}

/// A client for one node.
#[derive(Debug, Clone)]
pub struct RpcClient {
    base: String,
    http: reqwest::Client,
}

/// A txid from a node's answer: 32 bytes of hex, with or without `0x`.
fn normalize_txid(s: &str) -> Option<Txid> {
    s.trim().parse().ok()
}

fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(BODY_EXCERPT).collect();
    if body.chars().count() > BODY_EXCERPT {
        s.push('…');
    }
    s
}

impl RpcClient {
    /// A client for the node at `base` (`http://host:port` or `https://…`).
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Invalid(format!("node URL {base:?} must start with http:// or https://")));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("medanchor-wallet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Rpc(format!("building the HTTP client: {e}")))?;
        Ok(RpcClient { base, http })
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, path: &str, e: reqwest::Error) -> Error {
        // reqwest's message is "error sending request"; the cause
        // (connection refused, DNS, TLS) is in its source chain.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Error::Rpc(format!("{}{path}: {message}", self.base))
    }

    /// GET `path`; the status and the body parsed as JSON (`Null` when it
    /// is not JSON — callers that need it report the status).
    async fn get(&self, path: &str) -> Result<(u16, Json, String)> {
        let response =
            self.http.get(format!("{}{path}", self.base)).send().await.map_err(|e| self.unreachable(path, e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| self.unreachable(path, e))?;
        let json = serde_json::from_str(&text).unwrap_or(Json::Null);
        Ok((status, json, text))
    }

    async fn get_ok(&self, path: &str) -> Result<Json> {
        let (status, json, text) = self.get(path).await?;
        if !(200..300).contains(&status) || json.is_null() {
            return Err(Error::Rpc(format!("GET {}{path}: HTTP {status}: {}", self.base, excerpt(&text))));
        }
        Ok(json)
    }

    /// `GET /v2/info`.
    pub async fn info(&self) -> Result<NodeInfo> {
        let json = self.get_ok("/v2/info").await?;
        serde_json::from_value(json).map_err(|e| Error::Rpc(format!("{}/v2/info: unexpected shape: {e}", self.base)))
    }

    /// `GET /v2/accounts/{address}?proof=0`: balance and mined nonce.
    pub async fn account(&self, address: &str) -> Result<Account> {
        let path = format!("/v2/accounts/{address}?proof=0");
        let json = self.get_ok(&path).await?;
        let bad = || Error::Rpc(format!("{}{path}: unexpected shape: {json}", self.base));
        let balance = json["balance"].as_str().ok_or_else(bad)?;
        let balance = u128::from_str_radix(balance.trim_start_matches("0x"), 16).map_err(|_| bad())?;
        let nonce = json["nonce"].as_u64().ok_or_else(bad)?;
        Ok(Account { balance, nonce })
    }

    /// The nonce for the next transaction: the Hiro route's
    /// `possible_next_nonce` (which counts the mempool), or, from a plain
    /// stacks-node without that route, the account's mined nonce.
    pub async fn next_nonce(&self, address: &str) -> Result<u64> {
        let (status, json, _) = self.get(&format!("/extended/v1/address/{address}/nonces")).await?;
        if (200..300).contains(&status) {
            if let Some(n) = json["possible_next_nonce"].as_u64() {
                return Ok(n);
            }
        }
        Ok(self.account(address).await?.nonce)
    }

    /// `GET /v2/fees/transfer`: the fee rate in micro-STX per byte.
    pub async fn fee_rate(&self) -> Result<u64> {
        let json = self.get_ok("/v2/fees/transfer").await?;
        json.as_u64().ok_or_else(|| Error::Rpc(format!("{}/v2/fees/transfer: not a number: {json}", self.base)))
    }

    /// `POST /v2/transactions` (octet-stream). The txid, or
    /// [`Error::Rejected`] with the node's `reason` and `reason_data`
    /// verbatim.
    pub async fn broadcast(&self, raw: &[u8]) -> Result<Txid> {
        let path = "/v2/transactions";
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(raw.to_vec())
            .send()
            .await
            .map_err(|e| self.unreachable(path, e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(path, e))?;
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if status.is_success() {
            return json
                .as_str()
                .and_then(normalize_txid)
                .ok_or_else(|| Error::Rpc(format!("POST {}{path}: not a txid: {}", self.base, excerpt(&text))));
        }
        match json["reason"].as_str() {
            Some(reason) => Err(Error::Rejected {
                reason: reason.to_string(),
                reason_data: json.get("reason_data").map(|d| d.to_string()).unwrap_or_default(),
            }),
            None => Err(Error::Rpc(format!("POST {}{path}: HTTP {}: {}", self.base, status.as_u16(), excerpt(&text)))),
        }
    }

    /// `GET /extended/v1/tx/{txid}`: `None` while the node does not know
    /// the transaction (a Hiro API indexes a broadcast with some delay).
    pub async fn tx_status(&self, txid: &Txid) -> Result<Option<TxOutcome>> {
        let txid = *txid;
        let path = format!("/extended/v1/tx/{txid}");
        let (status, json, text) = self.get(&path).await?;
        if status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&status) || json.is_null() {
            return Err(Error::Rpc(format!("GET {}{path}: HTTP {status}: {}", self.base, excerpt(&text))));
        }
        let tx_status = json["tx_status"]
            .as_str()
            .ok_or_else(|| Error::Rpc(format!("{}{path}: no tx_status: {}", self.base, excerpt(&text))))?;
        let result_hex = json["tx_result"]["hex"].as_str();
        let result = match result_hex {
            Some(h) if !h.is_empty() => Some(
                ClarityValue::from_hex(h)
                    .map_err(|e| Error::Rpc(format!("{}{path}: tx_result is not a Clarity value: {e}", self.base)))?,
            ),
            _ => None,
        };
        Ok(Some(TxOutcome {
            txid,
            status: tx_status.to_string(),
            block_height: json["block_height"].as_u64(),
            burn_block_height: json["burn_block_height"].as_u64(),
            result,
            result_repr: json["tx_result"]["repr"].as_str().map(str::to_string),
        }))
    }

    /// Polls [`Self::tx_status`] every `poll` until the transaction is no
    /// longer pending; an error after `timeout`.
    pub async fn wait_for_tx(&self, txid: &Txid, timeout: Duration, poll: Duration) -> Result<TxOutcome> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(outcome) = self.tx_status(txid).await? {
                if outcome.status != "pending" {
                    return Ok(outcome);
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Rpc(format!(
                    "transaction {txid} not mined after {}s (it may still be; check `/extended/v1/tx/{txid}`)",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// `POST /v2/contracts/call-read/{contract_address}/{contract}/{function}`:
    /// the read-only function's value. A call the node could not evaluate
    /// is an error with its `cause`.
    pub async fn call_read_only(
        &self,
        contract_address: &str,
        contract: &str,
        function: &str,
        sender: &str,
        args: &[ClarityValue],
    ) -> Result<ClarityValue> {
        let path = format!("/v2/contracts/call-read/{contract_address}/{contract}/{function}");
        let body = serde_json::json!({
            "sender": sender,
            "arguments": args.iter().map(ClarityValue::to_hex).collect::<Vec<_>>(),
        });
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| self.unreachable(&path, e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| self.unreachable(&path, e))?;
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if !(200..300).contains(&status) || json.is_null() {
            return Err(Error::Rpc(format!("POST {}{path}: HTTP {status}: {}", self.base, excerpt(&text))));
        }
        if json["okay"].as_bool() != Some(true) {
            return Err(Error::Rpc(format!("{contract}.{function} failed on the node: {}", json["cause"])));
        }
        let hex_value = json["result"]
            .as_str()
            .ok_or_else(|| Error::Rpc(format!("{}{path}: no result: {}", self.base, excerpt(&text))))?;
        ClarityValue::from_hex(hex_value)
            .map_err(|e| Error::Rpc(format!("{}{path}: result is not a Clarity value: {e}", self.base)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txids_are_normalized() {
        let h = "ab".repeat(32);
        let want = Some(Txid([0xab; 32]));
        for (input, expected) in [
            (h.clone(), want),
            (format!("0x{h}"), want),
            (h.to_uppercase(), want),
            ("0xabc".to_string(), None),
            ("zz".repeat(32), None),
        ] {
            assert_eq!(normalize_txid(&input), expected, "{input}");
        }
    }

    #[test]
    fn node_urls_must_be_http() {
        assert!(RpcClient::new("http://127.0.0.1:20443/").is_ok());
        assert_eq!(
            RpcClient::new("https://api.testnet.hiro.so/").expect("https").base(),
            "https://api.testnet.hiro.so"
        );
        assert!(RpcClient::new("127.0.0.1:20443").is_err());
    }
}
