//! Anchoring record versions on-chain, and keeping our metadata in step
//! with what the chain decided.
//!
//! A version's ciphertext and metadata are durable before its transaction
//! exists ([`store_version`]); custodial versions are signed and sent
//! ([`anchor`]), sent again while the node does not have them
//! ([`resend_once`]), and settled from what the chain shows
//! ([`track_once`]): `anchored`, or `failed` with the contract's error.

use std::time::Duration;

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::RecordType;
use medanchor_contracts::{ContractError, DataHash, RecordId, Txid};
use medanchor_wallet::{ContractCall, Wallet};

use crate::db::{AnchorStatus, RecordMeta};
use crate::envelope::Binding;
use crate::error::{Error, Result};
use crate::records::{parse_record_type, principal_arg, Signing};
use crate::state::{now_ms, Service};

/// Encrypts and stores a version, and records it as pending — before any
/// transaction is sent, so a crash leaves a pending version the tracker
/// can settle, never an anchor without its payload. Also returns the
/// diagnosis codes of its structured content (for the analytics counters).
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_version(
    s: &Service,
    id: &[u8; 16],
    version: u64,
    patient: &Principal,
    author: &Principal,
    record_type: RecordType,
    content_type: &str,
    template: Option<medanchor_clinical::TemplateRef>,
    mut buf: Vec<u8>,
) -> Result<(RecordMeta, Vec<String>)> {
    let patient_s = patient.to_string();
    let binding = Binding { tenant: &s.config.tenant, patient: &patient_s, record_id: id, version };
    let size = buf.len();
    let created_ms = now_ms();
    // What search finds it by, taken from the plaintext before it is sealed.
    let terms = s.record_terms(id, version, author, template.as_ref(), &buf, created_ms)?;
    // Sealed in place and stored from its parts: a large payload is never
    // copied after the request body (each fresh 50 MiB buffer cost more
    // than the cipher on it), and the plaintext does not outlive this call.
    let sealed = s
        .keyring
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .seal_in_place(&binding, &mut buf)
        .map_err(Error::internal)?;
    let hash = s.blobs.put_parts(&sealed.parts(&buf)).map_err(Error::internal)?;
    let meta = RecordMeta {
        record_id: RecordId(*id),
        version,
        patient: patient_s,
        record_type: record_type.name().into(),
        data_type: record_type.data_type().name().into(),
        author: author.to_string(),
        content_type: content_type.into(),
        size: size as u64,
        data_hash: DataHash(hash),
        wrapped_key: hex::encode(&sealed.wrapped_key),
        kek_version: sealed.kek_version,
        created_ms,
        status: AnchorStatus::Pending,
        txid: None,
        block_height: None,
        index_block_hash: None,
        failure: None,
        confidentiality: None,
        sent_ms: None,
        custodial: None,
        template,
    };
    // The version and its search entries in one synced batch: the index
    // never lags an acknowledged write.
    let mut batch = s.db.batch();
    s.db.put_record_in(&mut batch, &meta, id);
    let _one_index_writer = s.index_stripes.lock(&meta.patient);
    s.index_record(&mut batch, id, &meta.patient, record_type, &terms)?;
    s.db.write(batch).map_err(Error::internal)?;
    Ok((meta, terms.diagnoses))
}

/// Sends the anchoring transaction (custodial) or leaves it to the
/// provider's wallet.
pub(crate) async fn anchor(
    s: &Service,
    who: &Principal,
    id: &[u8; 16],
    mut meta: RecordMeta,
    call: &ContractCall,
    signing: Signing,
) -> Result<RecordMeta> {
    if signing == Signing::Wallet {
        meta.custodial = Some(false);
        s.db.put_record(&meta, id).map_err(Error::internal)?;
        return Ok(meta);
    }
    meta.custodial = Some(true);
    if !s.custody.holds(&who.to_string()) {
        return Err(Error::Forbidden {
            code: "no-custodial-key",
            detail: "this node holds no key for you".into(),
            reason: None,
        });
    }
    if let AnchorCall::Create { confidentiality } = anchor_call(call) {
        meta.confidentiality = Some(confidentiality);
    }
    match broadcast(s, who, call).await {
        Sent::Unreachable(e) => {
            // Stays pending; the resender sends it once the node answers.
            meta.failure = Some(format!("not sent yet: {e}"));
            meta.sent_ms = Some(now_ms());
            s.db.put_record(&meta, id).map_err(Error::internal)?;
            return Err(Error::Unavailable(format!("the node is unreachable: {e}")));
        }
        outcome => settle_broadcast(&mut meta, outcome),
    }
    s.db.put_record(&meta, id).map_err(Error::internal)?;
    Ok(meta)
}

/// The kind of anchoring call (to send it again from the metadata).
enum AnchorCall {
    Create { confidentiality: u8 },
    Other,
}

fn anchor_call(call: &ContractCall) -> AnchorCall {
    match (call.function, call.args.last()) {
        ("create-record", Some(medanchor_contracts::ClarityValue::UInt(c))) => {
            AnchorCall::Create { confidentiality: u8::try_from(*c).unwrap_or(1) }
        }
        _ => AnchorCall::Other,
    }
}

/// What became of one broadcast.
pub(crate) enum Sent {
    /// In the node's mempool.
    Accepted(Txid),
    /// Refused for now (the sender's chain of pending transactions is at
    /// the node's limit, a nonce race): sent again later.
    Later(String),
    /// Refused for good: it can never be mined.
    Refused(String),
    /// Unknown whether it left (the node did not answer).
    Unconfirmed(String),
    /// The node could not be reached at all.
    Unreachable(String),
}

/// Rejections after which the same call, signed again later, can succeed.
const TRANSIENT_REJECTIONS: [&str; 4] =
    ["TooMuchChaining", "ConflictingNonceInMempool", "BadNonce", "ServerFailureDatabase"];

/// Signs `call` with `who`'s custodial key (next nonce from the node,
/// one broadcast at a time per key) and sends it.
pub(crate) async fn broadcast(s: &Service, who: &Principal, call: &ContractCall) -> Sent {
    let Some((key, lock)) = s.custody.keys.get(&who.to_string()) else {
        return Sent::Refused("this node holds no key for the author".into());
    };
    let _in_order = lock.lock().await;
    let wallet = match Wallet::connect(key.clone(), s.node.clone(), &s.config.contracts).await {
        Ok(w) => w,
        Err(e) => return Sent::Unreachable(e.to_string()),
    };
    match wallet.submit(call, None).await {
        Ok(sent) => Sent::Accepted(sent.txid),
        Err(e @ medanchor_wallet::Error::Rejected { .. }) => {
            let transient = matches!(&e, medanchor_wallet::Error::Rejected { reason, .. }
                if TRANSIENT_REJECTIONS.contains(&reason.as_str()));
            if transient {
                Sent::Later(e.to_string())
            } else {
                Sent::Refused(e.to_string())
            }
        }
        Err(e) => Sent::Unconfirmed(e.to_string()),
    }
}

/// Records a broadcast's outcome in the version's metadata.
pub(crate) fn settle_broadcast(meta: &mut RecordMeta, outcome: Sent) {
    meta.sent_ms = Some(now_ms());
    match outcome {
        Sent::Accepted(txid) => {
            meta.txid = Some(txid);
            meta.failure = None;
        }
        // Pending, without a txid: the resender sends it again.
        Sent::Later(why) => {
            meta.txid = None;
            meta.failure = Some(format!("queued: {why}"));
        }
        // The node said no for good: this transaction will never be mined.
        Sent::Refused(why) => {
            meta.status = AnchorStatus::Failed;
            meta.failure = Some(why);
        }
        // Unknown whether it left (a timeout after sending): stay pending;
        // the tracker settles it from what the chain shows, the resender
        // sends it again if the node never heard of it.
        Sent::Unconfirmed(why) | Sent::Unreachable(why) => meta.failure = Some(format!("broadcast unconfirmed: {why}")),
    }
}

/// The anchoring call of a stored version, rebuilt from its metadata:
/// `create-record` for version 1, else `update-record` on the version
/// before it.
pub(crate) fn anchoring_call(meta: &RecordMeta) -> Result<ContractCall> {
    let id = *meta.record_id;
    let hash = *meta.data_hash;
    if meta.version == 1 {
        let patient = principal_arg(&meta.patient, "patient")?;
        let record_type = parse_record_type(&meta.record_type)?;
        ContractCall::create_record(id, &patient, record_type, hash, None, meta.confidentiality.unwrap_or(1))
            .map_err(Error::internal)
    } else {
        Ok(ContractCall::update_record(id, meta.version - 1, hash, None))
    }
}

/// Signs and broadcasts `call` with `who`'s custodial key; the txid.
pub(crate) async fn custodial_submit(s: &Service, who: &Principal, call: &ContractCall) -> Result<Txid> {
    let Some((key, lock)) = s.custody.keys.get(&who.to_string()) else {
        return Err(Error::Forbidden {
            code: "no-custodial-key",
            detail: "this node holds no key for you".into(),
            reason: None,
        });
    };
    let _in_order = lock.lock().await;
    let wallet = Wallet::connect(key.clone(), s.node.clone(), &s.config.contracts)
        .await
        .map_err(|e| Error::Unavailable(format!("the node is unreachable: {e}")))?;
    let sent = wallet.submit(call, None).await.map_err(|e| match &e {
        // The caller's own pending transactions are at the node's limit
        // (25 per sender): theirs to wait out, not the node failing.
        medanchor_wallet::Error::Rejected { reason, .. } if reason == "TooMuchChaining" => Error::TooManyRequests {
            detail: format!("the node holds as many of your pending transactions as it takes: {e}"),
            retry_after_s: RETRY_QUEUED_AFTER.as_secs().max(1),
        },
        _ => Error::Unavailable(format!("broadcast failed: {e}")),
    })?;
    Ok(sent.txid)
}

/// Starts the anchor tracker: pending versions move to `anchored` or
/// `failed` as the indexer sees their transactions.
pub fn spawn_tracker(state: Service, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let s = state.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || track_once(&s))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                tracing::error!(error = %e, "anchor tracker failed");
            }
            match resend_once(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sent = n, "sent pending versions again"),
                Err(e) => tracing::error!(error = %e, "anchor resender failed"),
            }
        }
    })
}

/// How long after a broadcast the resender asks the node about it again.
pub const RESEND_AFTER: Duration = Duration::from_secs(10);
/// How long a version the node refused for now (no txid) waits.
pub const RETRY_QUEUED_AFTER: Duration = Duration::from_secs(1);

/// One pass of the resender, run after [`track_once`] by the tracker task.
///
/// A pending version this node signs for (its author's key is in custody)
/// whose transaction the node does not have — never sent (a crash, an
/// unreachable node), refused for now (the sender's chain of pending
/// transactions at the node's limit), or lost (a restarted node forgets its
/// mempool) — is signed again with the next nonce and sent. Sending twice
/// is harmless: the tracker settles a version from what the chain shows
/// (this version with our hash → anchored), and whichever copy is mined
/// second aborts. A version refused for good is `failed`. Returns how many
/// were sent.
pub async fn resend_once(state: &Service) -> Result<usize> {
    let now = now_ms();
    let mut sent = 0;
    let mut full: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (id, version) in state.db.pending().map_err(Error::internal)? {
        let Some(mut meta) = state.db.record(&id, version).map_err(Error::internal)? else { continue };
        let ours = meta.custodial.unwrap_or(meta.txid.is_some());
        if meta.status != AnchorStatus::Pending
            || !ours
            || !state.custody.holds(&meta.author)
            || full.contains(&meta.author)
        {
            continue;
        }
        // A version refused for now is retried soon; one sent (or being
        // sent by its request right now) gets time to reach the node.
        let (since, wait) = match (meta.sent_ms, &meta.txid) {
            (Some(t), None) => (t, RETRY_QUEUED_AFTER),
            (Some(t), Some(_)) => (t, RESEND_AFTER),
            (None, _) => (meta.created_ms, RESEND_AFTER),
        };
        if now.saturating_sub(since) < wait.as_millis() as u64 {
            continue;
        }
        if let Some(txid) = &meta.txid {
            match state.node.tx_status(txid).await {
                // Known to the node (in its mempool or mined): the tracker
                // settles it.
                Ok(Some(tx)) if !tx.is_dropped() => {
                    meta.sent_ms = Some(now);
                    state.db.put_record(&meta, &id).map_err(Error::internal)?;
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "asking the node about a pending transaction");
                    continue;
                }
            }
        }
        let author: Principal = meta.author.parse().map_err(Error::internal)?;
        let call = anchoring_call(&meta)?;
        let outcome = broadcast(state, &author, &call).await;
        match &outcome {
            Sent::Accepted(_) => sent += 1,
            Sent::Later(_) | Sent::Unreachable(_) => {
                full.insert(meta.author.clone());
            }
            _ => {}
        }
        settle_broadcast(&mut meta, outcome);
        state.db.put_record(&meta, &id).map_err(Error::internal)?;
    }
    Ok(sent)
}

/// One pass of the tracker.
///
/// Recovery rule. A version's metadata and ciphertext are durable before
/// its transaction exists, so a crash (or an unreachable node) between
/// store and mine leaves a `pending` version, never an anchor without its
/// payload. The chain decides what happens to it, whoever broadcast the
/// call (this node before a crash, a restarted node, the provider's
/// wallet):
/// - the chain shows this version with our data hash → `anchored`;
/// - the chain shows this version with another hash → `failed` (the
///   record moved on without it; a retry is a new version);
/// - our txid was mined with an `(err …)` → `failed`, with the contract's
///   error name;
/// - nothing on-chain yet (no txid, or a txid not yet mined) → stays
///   `pending`, and GET reports it so; a broadcast the node explicitly
///   rejected is `failed` at once (in `anchor`), since it can never be mined.
pub fn track_once(state: &Service) -> Result<usize> {
    let mut settled = 0;
    for (id, version) in state.db.pending().map_err(Error::internal)? {
        let Some(mut meta) = state.db.record(&id, version).map_err(Error::internal)? else { continue };
        // The chain's view of this record version (works for both signing
        // paths: the wallet path may never tell us its txid).
        let onchain =
            state.chain.versions(&RecordId(id)).map_err(Error::internal)?.into_iter().find(|v| v.version == version);
        if let Some(v) = onchain {
            if v.data_hash == meta.data_hash {
                meta.status = AnchorStatus::Anchored;
                meta.txid = Some(v.txid);
                meta.block_height = Some(v.block_height);
                meta.index_block_hash = Some(v.index_block_hash);
            } else {
                meta.status = AnchorStatus::Failed;
                meta.failure = Some("another payload was anchored as this version".into());
            }
        } else if let Some(txid) = &meta.txid {
            match state.chain.transaction(txid).map_err(Error::internal)? {
                Some(tx) if !tx.succeeded() => {
                    meta.status = AnchorStatus::Failed;
                    meta.failure = Some(failure_reason(&tx.raw_result));
                }
                _ => continue,
            }
        } else {
            continue;
        }
        state.db.put_record(&meta, &id).map_err(Error::internal)?;
        settled += 1;
    }
    Ok(settled)
}

/// `(err uN)` → the contract's error name.
fn failure_reason(raw_result: &str) -> String {
    medanchor_contracts::ClarityValue::from_hex(raw_result)
        .ok()
        .and_then(|v| match v {
            medanchor_contracts::ClarityValue::Response(Err(inner)) => match *inner {
                medanchor_contracts::ClarityValue::UInt(code) => {
                    ContractError::from_code(code).map(|e| e.constant().to_string())
                }
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_else(|| format!("transaction failed ({raw_result})"))
}
