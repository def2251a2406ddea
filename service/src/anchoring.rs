//! Periodic anchoring of the audit log on-chain: when the log has grown
//! since its last on-chain checkpoint, an operator key the node holds
//! submits `record-management.anchor-audit-root(tree-size, root)`.
//!
//! The on-chain checkpoint is what makes the log checkable without trusting
//! the API: an auditor reads the head with a read-only call to any node
//! (`get-audit-head(log)`), asks the API for an inclusion proof at exactly
//! that size and checks it against the chain's root (`medanchor verify
//! audit`). The log's on-chain identity is the operator's principal: the
//! contract keys checkpoints by the submitting principal.
//!
//! The contract accepts a submission from an anchor operator (authorized by
//! the contract owner with `set-anchor-operator`) or an active provider, and
//! only for a tree size above the previous head. Before each submission the
//! task reads the head through the node and checks that our root at the
//! head's size is the root the chain holds: a log that no longer matches
//! its own anchor is reported (loudly) and never anchored again, since a
//! new root would paper over the divergence.
//!
//! Unlike the request paths, which read the chain through the indexer, this
//! task reads its own head with read-only calls through the node it submits
//! to (the indexer keeps no head per log); it never executes Clarity.
//! Failures are logged and retried at the next tick; requests never wait
//! for anchoring.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medanchor_contracts::{ClarityValue, ContractName, Txid};
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::{ContractCall, RpcClient, Wallet};
use serde::{Deserialize, Serialize};

use crate::audit::AuditError;
use crate::db::{ApiDb, Cf, DbError};
use crate::merkle::Hash;
use crate::state::Service;

/// The `meta` key under which the task keeps its [`AnchorRecord`].
pub const ANCHOR_META_KEY: &[u8] = b"audit_anchor";

/// How long a submission may stay unmined before the task forgets it and
/// submits again.
const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(300);

/// Why an anchoring step failed.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The node could not be reached, refused the transaction, or answered
    /// something unexpected.
    #[error(transparent)]
    Wallet(#[from] medanchor_wallet::Error),
    /// The audit log could not be read.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The API database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A read-only call returned a value of an unexpected shape.
    #[error("{function} returned an unexpected value: {value}")]
    Shape {
        /// The read-only function.
        function: &'static str,
        /// The value, as debug text.
        value: String,
    },
    /// The log does not extend its own on-chain checkpoint.
    #[error("the audit log diverges from its on-chain checkpoint: {0}")]
    Diverged(String),
}

/// An on-chain audit head (`get-audit-head`) or checkpoint
/// (`get-audit-checkpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OnChainHead {
    /// The tree size anchored.
    pub tree_size: u64,
    /// The RFC 9162 root at that size, hex without `0x`.
    pub root: String,
    /// The burn-block height of the anchoring block.
    pub at: u64,
}

impl OnChainHead {
    /// The root as bytes.
    pub fn root_bytes(&self) -> Option<Hash> {
        hex::decode(&self.root).ok().and_then(|b| b.try_into().ok())
    }
}

/// An `anchor-audit-root` transaction the task sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Submission {
    /// The tree size submitted.
    pub tree_size: u64,
    /// The root submitted, hex.
    pub root: String,
    /// The transaction id.
    pub txid: Txid,
    /// Unix milliseconds.
    pub sent_ms: u64,
}

/// What the task last knew, kept in the API database for
/// `GET /v1/audit/anchor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorRecord {
    /// The log's on-chain identity: the operator principal.
    pub log: String,
    /// The last on-chain head read, if the log has one.
    pub head: Option<OnChainHead>,
    /// When this record last changed (unix milliseconds).
    pub checked_ms: Option<u64>,
    /// The last submission.
    pub last_submission: Option<Submission>,
    /// The last step's failure, cleared by the next success.
    pub last_error: Option<String>,
}

/// What one anchoring step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorOutcome {
    /// The log is empty: nothing to anchor.
    Empty,
    /// The chain already holds the log's current size.
    UpToDate(OnChainHead),
    /// An earlier submission is not mined yet.
    InFlight(Submission),
    /// A new root was submitted.
    Submitted(Submission),
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn uint(tuple: &std::collections::BTreeMap<String, ClarityValue>, name: &str) -> Option<u64> {
    match tuple.get(name) {
        Some(ClarityValue::UInt(n)) => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// Decodes the `(optional {tree-size, root, …})` of `get-audit-head` or
/// `get-audit-checkpoint` (whose tuple has no `tree-size`: pass it as
/// `size`).
pub fn parse_head(
    function: &'static str,
    value: &ClarityValue,
    size: Option<u64>,
) -> Result<Option<OnChainHead>, AnchorError> {
    let shape = || AnchorError::Shape { function, value: format!("{value:?}") };
    let tuple = match value {
        ClarityValue::Optional(None) => return Ok(None),
        ClarityValue::Optional(Some(inner)) => match &**inner {
            ClarityValue::Tuple(t) => t,
            _ => return Err(shape()),
        },
        _ => return Err(shape()),
    };
    let root = match tuple.get("root") {
        Some(ClarityValue::Buffer(b)) if b.len() == 32 => hex::encode(b),
        _ => return Err(shape()),
    };
    let tree_size = match size {
        Some(s) => s,
        None => uint(tuple, "tree-size").ok_or_else(shape)?,
    };
    Ok(Some(OnChainHead { tree_size, root, at: uint(tuple, "at").ok_or_else(shape)? }))
}

fn log_arg(log: &str) -> Result<ClarityValue, AnchorError> {
    ClarityValue::principal(log)
        .map_err(|e| AnchorError::Wallet(medanchor_wallet::Error::Invalid(format!("log principal {log:?}: {e}"))))
}

/// `get-audit-head(log)` through `node`'s read-only call route.
pub async fn read_audit_head(node: &RpcClient, contracts: &str, log: &str) -> Result<Option<OnChainHead>, AnchorError> {
    let name = ContractName::RecordManagement.name();
    let value = node.call_read_only(contracts, name, "get-audit-head", contracts, &[log_arg(log)?]).await?;
    parse_head("get-audit-head", &value, None)
}

/// `get-audit-checkpoint(log, size)`: the root anchored for exactly `size`.
pub async fn read_audit_checkpoint(
    node: &RpcClient,
    contracts: &str,
    log: &str,
    size: u64,
) -> Result<Option<OnChainHead>, AnchorError> {
    let name = ContractName::RecordManagement.name();
    let args = [log_arg(log)?, ClarityValue::UInt(size.into())];
    let value = node.call_read_only(contracts, name, "get-audit-checkpoint", contracts, &args).await?;
    parse_head("get-audit-checkpoint", &value, Some(size))
}

/// `is-anchor-operator(who)`.
pub async fn is_anchor_operator(node: &RpcClient, contracts: &str, who: &str) -> Result<bool, AnchorError> {
    let name = ContractName::RecordManagement.name();
    let value = node.call_read_only(contracts, name, "is-anchor-operator", contracts, &[log_arg(who)?]).await?;
    match value {
        ClarityValue::Bool(b) => Ok(b),
        other => Err(AnchorError::Shape { function: "is-anchor-operator", value: format!("{other:?}") }),
    }
}

/// The `anchor-audit-root` call.
pub fn anchor_call(tree_size: u64, root: &Hash) -> ContractCall {
    ContractCall {
        contract: ContractName::RecordManagement,
        function: "anchor-audit-root",
        args: vec![ClarityValue::UInt(tree_size.into()), ClarityValue::Buffer(root.to_vec())],
    }
}

/// The task's last [`AnchorRecord`], if it ever ran.
pub fn anchor_record(db: &ApiDb) -> Result<Option<AnchorRecord>, DbError> {
    db.get(Cf::Meta, ANCHOR_META_KEY)?
        .map(|b| serde_json::from_slice(&b).map_err(|e| DbError::Corrupt(format!("audit anchor record: {e}"))))
        .transpose()
}

fn put_record(db: &ApiDb, record: &AnchorRecord) -> Result<(), DbError> {
    let bytes = serde_json::to_vec(record).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let mut batch = db.batch();
    batch.put_cf(db.cf(Cf::Meta), ANCHOR_META_KEY, bytes);
    db.write(batch)
}

/// The anchoring task's state between ticks.
#[derive(Debug)]
pub struct Anchorer {
    state: Service,
    wallet: Wallet,
    in_flight: Option<(Submission, Instant)>,
}

impl Anchorer {
    /// Connects `operator` to the state's node.
    pub async fn connect(state: Service, operator: StacksKey) -> Result<Anchorer, AnchorError> {
        let (node, contracts, _) = state.anchor_parts();
        let wallet = Wallet::connect(operator, node.clone(), contracts).await?;
        Ok(Anchorer { state, wallet, in_flight: None })
    }

    /// The log's on-chain identity (the operator's address).
    pub fn log(&self) -> &str {
        self.wallet.address()
    }

    /// One step: read the head, check our log extends it, and submit the
    /// current root if the log has grown and nothing is in flight.
    pub async fn step(&mut self) -> Result<AnchorOutcome, AnchorError> {
        let (node, contracts, _) = self.state.anchor_parts();
        let head = read_audit_head(node, contracts, self.wallet.address()).await?;
        let audit = self.state.audit().clone();
        let size = audit.size()?;
        let onchain_size = head.as_ref().map_or(0, |h| h.tree_size);
        if let Some(h) = &head {
            if h.tree_size > size {
                return Err(AnchorError::Diverged(format!(
                    "the chain holds size {} but the log has only {size} entries",
                    h.tree_size
                )));
            }
            let ours = audit.root(h.tree_size)?;
            if h.root_bytes() != Some(ours) {
                return Err(AnchorError::Diverged(format!(
                    "at size {} the chain holds root {} and the log computes {}",
                    h.tree_size,
                    h.root,
                    hex::encode(ours)
                )));
            }
        }
        let mut failed = None;
        if let Some((sent, since)) = &self.in_flight {
            let mined = onchain_size >= sent.tree_size;
            let settled = match self.wallet.client().tx_status(&sent.txid).await? {
                Some(tx) if !tx.is_pending() => {
                    if !tx.is_success() {
                        let reason = tx.contract_error().map_or_else(
                            || tx.result_repr.clone().unwrap_or_else(|| tx.status.clone()),
                            |e| e.constant().to_string(),
                        );
                        tracing::warn!(txid = %sent.txid, %reason, "anchor-audit-root failed on-chain");
                        failed = Some(format!("anchor-audit-root {} failed: {reason}", sent.txid));
                    }
                    true
                }
                _ => false,
            };
            if !(mined || settled || since.elapsed() > IN_FLIGHT_LIMIT) {
                let sent = sent.clone();
                self.save(head, None, None)?;
                return Ok(AnchorOutcome::InFlight(sent));
            }
            self.in_flight = None;
        }
        if size == 0 {
            self.save(head, None, failed)?;
            return Ok(AnchorOutcome::Empty);
        }
        if let Some(h) = head.as_ref().filter(|h| h.tree_size >= size) {
            let h = h.clone();
            self.save(head, None, failed)?;
            return Ok(AnchorOutcome::UpToDate(h));
        }
        let root = audit.root(size)?;
        let sent = {
            let _one = self.state.submit_lock.lock().await;
            self.wallet.submit(&anchor_call(size, &root), None).await?
        };
        let submission = Submission { tree_size: size, root: hex::encode(root), txid: sent.txid, sent_ms: now_ms() };
        tracing::info!(size, txid = %submission.txid, "audit root submitted");
        self.in_flight = Some((submission.clone(), Instant::now()));
        self.save(head, Some(submission.clone()), failed)?;
        Ok(AnchorOutcome::Submitted(submission))
    }

    /// Records what the step learned (keeping earlier fields it did not
    /// touch).
    fn save(
        &self,
        head: Option<OnChainHead>,
        submission: Option<Submission>,
        error: Option<String>,
    ) -> Result<(), DbError> {
        let (_, _, db) = self.state.anchor_parts();
        let old = anchor_record(db)?;
        let record = AnchorRecord {
            log: self.wallet.address().to_string(),
            checked_ms: Some(now_ms()),
            last_submission: submission.or_else(|| old.as_ref().and_then(|o| o.last_submission.clone())),
            last_error: error,
            head,
        };
        let unchanged = old.as_ref().is_some_and(|o| {
            o.log == record.log
                && o.head == record.head
                && o.last_submission == record.last_submission
                && o.last_error == record.last_error
        });
        if unchanged {
            return Ok(());
        }
        put_record(db, &record)
    }

    fn save_error(&self, error: &AnchorError) {
        let (_, _, db) = self.state.anchor_parts();
        let head = anchor_record(db).ok().flatten().and_then(|r| r.head);
        if let Err(e) = self.save(head, None, Some(error.to_string())) {
            tracing::warn!(error = %e, "recording the audit anchor failure");
        }
    }
}

/// Writes the operator's identity before the first step, so
/// `GET /v1/audit/anchor` names the log even before it is anchored.
fn announce(state: &Service, log: &str) -> Result<(), DbError> {
    let (_, _, db) = state.anchor_parts();
    let old = anchor_record(db)?;
    match old {
        Some(o) if o.log == log => Ok(()),
        _ => put_record(
            db,
            &AnchorRecord { log: log.into(), head: None, checked_ms: None, last_submission: None, last_error: None },
        ),
    }
}

/// The audit-anchoring job: each run anchors the audit log's root signed
/// by `operator` when the log has grown since its on-chain head (one step:
/// submit, or follow the transaction in flight). `ready` is set once the
/// operator may anchor (on the devnet, when the owner has authorized it);
/// until then a run waits. A divergence between the log and the chain's
/// head fails the run (an alert until resolved); a node out of reach or a
/// transaction refused fails it too, and the next run tries again.
pub fn audit_anchor_job(
    state: Service,
    operator: StacksKey,
    every: Duration,
    ready: Arc<std::sync::atomic::AtomicBool>,
) -> (crate::scheduler::JobSpec, crate::scheduler::JobFn) {
    let log = medanchor_wallet::testnet_address(&operator);
    if let Err(e) = announce(&state, &log) {
        tracing::warn!(error = %e, "recording the audit log's operator");
    }
    let anchorer: Arc<tokio::sync::Mutex<Option<Anchorer>>> = Arc::default();
    let spec =
        crate::scheduler::JobSpec { name: "audit-anchoring", every_ms: every.as_millis() as u64, lease_ms: 120_000 };
    let run: crate::scheduler::JobFn = Arc::new(move || -> crate::scheduler::JobFuture {
        let (state, operator, anchorer, ready) = (state.clone(), operator.clone(), anchorer.clone(), ready.clone());
        Box::pin(async move {
            if !ready.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok("waiting for the operator's authorization".into());
            }
            let mut slot = anchorer.lock().await;
            let a = match &mut *slot {
                Some(a) => a,
                None => slot.insert(
                    Anchorer::connect(state, operator).await.map_err(|e| format!("the node is unreachable: {e}"))?,
                ),
            };
            match a.step().await {
                Ok(AnchorOutcome::Submitted(_)) => Ok("audit root submitted".into()),
                Ok(AnchorOutcome::Empty) => Ok("the log is empty".into()),
                Ok(AnchorOutcome::InFlight(_)) => Ok("an anchoring transaction is in flight".into()),
                Ok(AnchorOutcome::UpToDate(h)) => Ok(format!("anchored up to {} entries", h.tree_size)),
                Err(e) => {
                    a.save_error(&e);
                    Err(e.to_string())
                }
            }
        })
    });
    (spec, run)
}

/// Runs [`audit_anchor_job`] alone every `every` on a scheduler over the
/// service's store (tests; `up` adds the job to its tenant's scheduler).
pub fn spawn_audit_anchor(state: Service, operator: StacksKey, every: Duration) -> tokio::task::JoinHandle<()> {
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (spec, run) = audit_anchor_job(state.clone(), operator, every, ready);
    let mut scheduler = state.bare_scheduler("audit-anchoring");
    scheduler.add(spec, run);
    scheduler.spawn(every / 2)
}
