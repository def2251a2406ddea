//! Signing in to a medanchor API with a Stacks key: ask for a challenge,
//! sign its message as Stacks wallets sign messages
//! ([`StacksKey::sign_message`]), trade the signature for a session token.
//! One implementation for the command, its benches and every test.

use serde_json::{json, Value};

use crate::keys::{StacksKey, TESTNET_SINGLESIG};
use crate::{Error, Result};

/// Signs in to the API at `api` (its base URL) with `key`; returns the
/// session token.
pub async fn sign_in(http: &reqwest::Client, api: &str, key: &StacksKey) -> Result<String> {
    let principal = key.address(TESTNET_SINGLESIG).to_string();
    let post = |path: &str, body: Value| {
        let request = http.post(format!("{api}{path}")).json(&body);
        async move {
            let r = request.send().await.map_err(|e| Error::Rpc(format!("reaching the API at {api}: {e}")))?;
            r.json::<Value>().await.map_err(|e| Error::Rpc(format!("the API answered no JSON: {e}")))
        }
    };
    let c = post("/v1/auth/challenge", json!({ "principal": principal })).await?;
    let message = c["message"].as_str().ok_or_else(|| Error::Rpc(format!("the challenge has no message: {c}")))?;
    let signature = key.sign_message(message.as_bytes());
    let r = post("/v1/auth/verify", json!({ "nonce": c["nonce"], "signature": signature })).await?;
    r["token"].as_str().map(str::to_string).ok_or_else(|| Error::Rpc(format!("sign-in as {principal} failed: {r}")))
}
