//! Batch anchoring of attachments: every stored file's ciphertext hash is
//! anchored on-chain, many per transaction.
//!
//! Storing a file queues its SHA-256 (in the batch that writes its
//! version). The anchorer ([`file_anchor_job`]; every [`BATCH_EVERY`],
//! or sooner once [`Config::batch_max`](crate::Config) hashes wait) seals
//! the queue into a batch: the hashes in ascending order are the leaves of
//! an RFC 6962 tree (`leaf = SHA-256(0x00 ‖ file hash)`), whose root and
//! leaf count one `anchor-batch` transaction puts on-chain. Sealing is one
//! synced write (the batch, each hash's place in it, the queue entries
//! gone), so a crash leaves either the queue or a batch to send; a batch
//! the chain refused puts its hashes back in the queue. Each file's
//! inclusion proof is computed from its batch's stored leaves, and checks
//! against the on-chain root without trusting the node
//! (`medanchor verify file … --attachment`).
//!
//! Keys in the `attachments` family: `q‖hash` queued; `b‖root` the batch;
//! `s‖root` a batch not yet settled; `p‖hash` → `root ‖ index`.

use std::sync::Arc;
use std::time::Duration;

use medanchor_contracts::{ClarityValue, ContractName, Txid};
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::{ContractCall, Wallet};
use serde::{Deserialize, Serialize};

use crate::db::Cf;
use crate::error::{Error, Result};
use crate::merkle::{self, Hash, MemoryStore};
use crate::state::Service;

/// How often the anchorer seals a batch.
pub const BATCH_EVERY: Duration = Duration::from_secs(10);
/// Hashes per batch by default.
pub const DEFAULT_BATCH_MAX: usize = 1_000;
/// The most hashes one batch may hold (a proof is computed from its
/// stored leaves).
pub const MAX_BATCH: usize = 100_000;
/// How long a sent batch may stay unmined before it is sent again.
const RESEND_AFTER_MS: u64 = 120_000;

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BatchStatus {
    /// Sealed, not yet on-chain.
    Pending,
    /// Its root is on-chain.
    Anchored,
}

/// A sealed batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRow {
    /// The RFC 6962 root, hex.
    pub root: String,
    /// The file hashes, ascending, hex: leaf `i` is `leaves[i]`.
    pub leaves: Vec<String>,
    /// Unix ms.
    pub sealed_ms: u64,
    /// Where it stands.
    pub status: BatchStatus,
    /// The last `anchor-batch` sent for it.
    pub txid: Option<Txid>,
    /// When that was sent (unix ms).
    pub sent_ms: Option<u64>,
    /// The Stacks block that anchored it.
    pub block_height: Option<u64>,
}

/// A file's inclusion in its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProof {
    /// The file's ciphertext hash (the leaf's entry).
    pub sha256: Hash,
    /// Its index among the batch's leaves.
    pub leaf_index: u64,
    /// The batch's leaf count.
    pub tree_size: u64,
    /// The audit path, bottom-up (RFC 9162 §2.1.3.1).
    pub path: Vec<Hash>,
    /// The batch's root.
    pub root: Hash,
    /// Where the batch stands.
    pub status: BatchStatus,
    /// The transaction that anchored (or will anchor) it.
    pub txid: Option<Txid>,
    /// The block that anchored it.
    pub block_height: Option<u64>,
}

/// Where a file's hash stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAnchor {
    /// Waiting for the next batch.
    Queued,
    /// In a batch.
    Batched(FileProof),
}

fn key(prefix: u8, h: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(prefix);
    k.extend_from_slice(h);
    k
}

fn hash32(hex_str: &str) -> Result<Hash> {
    hex::decode(hex_str).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| Error::internal("a stored hash"))
}

/// The root of `leaves` (file hashes, in order) and the tree to prove from.
pub fn batch_tree(leaves: &[Hash]) -> (Hash, MemoryStore) {
    let mut store = MemoryStore::new();
    for (i, h) in leaves.iter().enumerate() {
        let nodes =
            merkle::append(i as u64, merkle::leaf_hash(h), &store).unwrap_or_else(|_| unreachable!("in memory"));
        store.extend(nodes);
    }
    let root = merkle::root(leaves.len() as u64, &store).unwrap_or_else(|_| unreachable!("in memory"));
    (root, store)
}

/// The `anchor-batch` call for a root of `leaf_count` leaves.
pub fn anchor_batch_call(root: &Hash, leaf_count: u64) -> ContractCall {
    ContractCall {
        contract: ContractName::RecordManagement,
        function: "anchor-batch",
        args: vec![ClarityValue::Buffer(root.to_vec()), ClarityValue::UInt(leaf_count.into())],
    }
}

impl Service {
    /// Queues a stored file's hash for the next batch, in `batch` (the one
    /// that writes the file's version). A hash already queued or batched
    /// (a restored version's) is not queued again.
    pub(crate) fn queue_file_hash(&self, batch: &mut rocksdb::WriteBatch, sha: &Hash) -> Result<()> {
        if self.db.get(Cf::Attachments, &key(b'p', sha))?.is_none() {
            batch.put_cf(self.db.cf(Cf::Attachments), key(b'q', sha), []);
        }
        Ok(())
    }

    /// Queues hashes of files stored elsewhere (tools, benchmarks, a
    /// migration): one synced write.
    pub fn queue_file_hashes(&self, hashes: &[Hash]) -> Result<()> {
        let mut batch = self.db.batch();
        for h in hashes {
            self.queue_file_hash(&mut batch, h)?;
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// Batch `root`: its row, its leaves and its tree, rebuilt from the
    /// stored leaves and checked against the root that names it.
    fn batch_with_tree(&self, root: &Hash) -> Result<(BatchRow, Vec<Hash>, MemoryStore)> {
        let row = self.file_batch(root)?.ok_or_else(|| Error::internal("a batch without its row"))?;
        let leaves = row.leaves.iter().map(|h| hash32(h)).collect::<Result<Vec<_>>>()?;
        let (computed, store) = batch_tree(&leaves);
        if &computed != root {
            return Err(Error::internal(format!("batch {} does not hold what it names", row.root)));
        }
        Ok((row, leaves, store))
    }

    fn proof_in(row: &BatchRow, leaves: &[Hash], store: &MemoryStore, index: u64) -> Result<FileProof> {
        let size = leaves.len() as u64;
        Ok(FileProof {
            sha256: leaves[index as usize],
            leaf_index: index,
            tree_size: size,
            path: merkle::inclusion_proof(index, size, store).map_err(Error::internal)?,
            root: hash32(&row.root)?,
            status: row.status,
            txid: row.txid,
            block_height: row.block_height,
        })
    }

    /// Every leaf's proof in batch `root`, the tree built once (what a
    /// client asking per file would be given, all at once).
    pub fn batch_proofs(&self, root: &Hash) -> Result<Vec<FileProof>> {
        if self.file_batch(root)?.is_none() {
            return Err(Error::NotFound(format!("batch {}", hex::encode(root))));
        }
        let (row, leaves, store) = self.batch_with_tree(root)?;
        (0..leaves.len() as u64).map(|i| Self::proof_in(&row, &leaves, &store, i)).collect()
    }

    /// Hashes waiting for a batch (at most `limit` counted).
    pub fn queued_file_hashes(&self, limit: usize) -> Result<Vec<Hash>> {
        let rows = self.db.scan_page(Cf::Attachments, b"q", limit)?;
        rows.into_iter()
            .take_while(|(k, _)| k.first() == Some(&b'q'))
            .map(|(k, _)| k[1..].try_into().map_err(|_| Error::internal("a queued hash")))
            .collect()
    }

    /// Seals up to `max` queued hashes into a batch (one synced write).
    pub fn seal_batch(&self, max: usize) -> Result<Option<BatchRow>> {
        let leaves = self.queued_file_hashes(max.clamp(1, MAX_BATCH))?;
        if leaves.is_empty() {
            return Ok(None);
        }
        let (root, _) = batch_tree(&leaves);
        let row = BatchRow {
            root: hex::encode(root),
            leaves: leaves.iter().map(hex::encode).collect(),
            sealed_ms: self.now_ms(),
            status: BatchStatus::Pending,
            txid: None,
            sent_ms: None,
            block_height: None,
        };
        let cf = self.db.cf(Cf::Attachments);
        let mut batch = self.db.batch();
        for (i, h) in leaves.iter().enumerate() {
            batch.delete_cf(cf, key(b'q', h));
            batch.put_cf(cf, key(b'p', h), [&root[..], &(i as u64).to_be_bytes()].concat());
        }
        batch.put_cf(cf, key(b'b', &root), serde_json::to_vec(&row).map_err(Error::internal)?);
        batch.put_cf(cf, key(b's', &root), []);
        self.db.write(batch)?;
        Ok(Some(row))
    }

    /// A sealed batch.
    pub fn file_batch(&self, root: &Hash) -> Result<Option<BatchRow>> {
        match self.db.get(Cf::Attachments, &key(b'b', root))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(Error::internal)?)),
            None => Ok(None),
        }
    }

    fn put_batch(&self, row: &BatchRow, settled: bool) -> Result<()> {
        let root = hash32(&row.root)?;
        let cf = self.db.cf(Cf::Attachments);
        let mut batch = self.db.batch();
        batch.put_cf(cf, key(b'b', &root), serde_json::to_vec(row).map_err(Error::internal)?);
        if settled {
            batch.delete_cf(cf, key(b's', &root));
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// Batches not yet settled.
    pub fn unsettled_batches(&self) -> Result<Vec<BatchRow>> {
        let mut out = Vec::new();
        for (k, _) in self.db.scan(Cf::Attachments, b"s")? {
            let root: Hash = k[1..].try_into().map_err(|_| Error::internal("a batch key"))?;
            if let Some(row) = self.file_batch(&root)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Where a file hash stands: queued, or in a batch with its proof.
    pub fn file_anchor(&self, sha: &Hash) -> Result<Option<FileAnchor>> {
        let Some(place) = self.db.get(Cf::Attachments, &key(b'p', sha))? else {
            return Ok(self.db.get(Cf::Attachments, &key(b'q', sha))?.map(|_| FileAnchor::Queued));
        };
        let root: Hash = place.get(..32).and_then(|r| r.try_into().ok()).ok_or_else(|| Error::internal("place"))?;
        let index = place.get(32..40).and_then(|i| i.try_into().ok()).map(u64::from_be_bytes);
        let index = index.ok_or_else(|| Error::internal("a batch index"))?;
        let (row, leaves, store) = self.batch_with_tree(&root)?;
        if leaves.get(index as usize) != Some(sha) {
            return Err(Error::internal(format!("batch {} does not hold what it names", row.root)));
        }
        Ok(Some(FileAnchor::Batched(Self::proof_in(&row, &leaves, &store, index)?)))
    }

    /// The anchoring of one attachment version, for a reader of the record.
    pub async fn attachment_anchor(
        &self,
        caller: &crate::Caller,
        id: &medanchor_contracts::RecordId,
        attachment: &[u8; 16],
        version: Option<u64>,
    ) -> Result<(crate::attachments::AttachmentMeta, FileAnchor)> {
        let m = self.attachment_version(caller, id, attachment, version, "attachment.proof").await?;
        let anchor = self
            .file_anchor(&m.sha256.0)?
            .ok_or_else(|| Error::internal(format!("attachment {} has no anchor entry", m.attachment_id)))?;
        Ok((m, anchor))
    }
}

/// Sends and settles batches with an operator key.
#[derive(Debug)]
pub struct FileAnchorer {
    state: Service,
    wallet: Wallet,
    max: usize,
}

impl FileAnchorer {
    /// Connects `operator` (an anchor operator, or an active provider) to
    /// the state's node; batches hold at most `max` hashes.
    pub async fn connect(state: Service, operator: StacksKey, max: usize) -> Result<FileAnchorer> {
        let (node, contracts, _) = state.anchor_parts();
        let wallet = Wallet::connect(operator, node.clone(), contracts)
            .await
            .map_err(|e| Error::Unavailable(format!("the node: {e}")))?;
        Ok(FileAnchorer { state, wallet, max: max.clamp(1, MAX_BATCH) })
    }

    /// One step: settle what the chain shows, send what is unsent (or
    /// sent too long ago), and seal the queue into a batch when `seal` or
    /// when a full batch waits. Returns the batches sent.
    pub async fn step(&mut self, seal: bool) -> Result<Vec<BatchRow>> {
        let s = self.state.clone();
        let mut sent = Vec::new();
        for mut row in s.unsettled_batches()? {
            let root = hash32(&row.root)?;
            if let Some(view) = s.chain.batch(&root).map_err(Error::internal)? {
                row.status = BatchStatus::Anchored;
                row.txid = Some(view.txid);
                row.block_height = Some(view.block_height);
                s.put_batch(&row, true)?;
                tracing::info!(root = %row.root, leaves = row.leaves.len(), height = view.block_height, "file batch anchored");
                continue;
            }
            let due = match (row.txid, row.sent_ms) {
                (Some(txid), Some(at)) => {
                    let outcome =
                        self.wallet.client().tx_status(&txid).await.map_err(|e| Error::Unavailable(e.to_string()))?;
                    match outcome {
                        // Refused on-chain (e.g. the operator lost its
                        // authorization): sent again, later, by the timer.
                        Some(tx) if !tx.is_pending() && !tx.is_success() => {
                            tracing::warn!(root = %row.root, %txid, status = %tx.status, "anchor-batch failed; it will be sent again");
                            s.now_ms() > at + RESEND_AFTER_MS
                        }
                        // Mined: the indexer will show it.
                        Some(tx) if tx.is_success() => false,
                        _ => s.now_ms() > at + RESEND_AFTER_MS,
                    }
                }
                _ => true,
            };
            if due {
                self.send(&mut row).await?;
                sent.push(row);
            }
        }
        let full = s.queued_file_hashes(self.max)?.len() >= self.max;
        if seal || full {
            if let Some(mut row) = s.seal_batch(self.max)? {
                self.send(&mut row).await?;
                sent.push(row);
            }
        }
        Ok(sent)
    }

    async fn send(&self, row: &mut BatchRow) -> Result<()> {
        let root = hash32(&row.root)?;
        let call = anchor_batch_call(&root, row.leaves.len() as u64);
        let submitted = {
            // One submitter per key at a time: the audit anchorer may
            // share the operator key, and nonces must go out in order.
            let _one = self.state.submit_lock.lock().await;
            self.wallet.submit(&call, None).await.map_err(|e| Error::Unavailable(format!("anchor-batch: {e}")))?
        };
        row.txid = Some(submitted.txid);
        row.sent_ms = Some(self.state.now_ms());
        self.state.put_batch(row, false)?;
        tracing::info!(root = %row.root, leaves = row.leaves.len(), txid = %submitted.txid, "file batch sent");
        Ok(())
    }
}

/// The file-anchoring job: each run (every second) settles batches in
/// flight and sends a full batch at once; every `every` it also seals the
/// queue into a batch. Waits until `ready` (the operator authorized); a
/// failed run is retried at the next.
pub fn file_anchor_job(
    state: Service,
    operator: StacksKey,
    every: Duration,
    ready: Arc<std::sync::atomic::AtomicBool>,
) -> (crate::scheduler::JobSpec, crate::scheduler::JobFn) {
    struct Loop {
        anchorer: Option<FileAnchorer>,
        last_seal: std::time::Instant,
    }
    let slot = Arc::new(tokio::sync::Mutex::new(Loop { anchorer: None, last_seal: std::time::Instant::now() }));
    let spec = crate::scheduler::JobSpec { name: "file-anchoring", every_ms: 1_000, lease_ms: 120_000 };
    let run: crate::scheduler::JobFn = Arc::new(move || -> crate::scheduler::JobFuture {
        let (state, operator, slot, ready) = (state.clone(), operator.clone(), slot.clone(), ready.clone());
        Box::pin(async move {
            if !ready.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok("waiting for the operator's authorization".into());
            }
            let mut l = slot.lock().await;
            let max = state.config.batch_max;
            if l.anchorer.is_none() {
                let a = FileAnchorer::connect(state, operator, max)
                    .await
                    .map_err(|e| format!("the node is unreachable: {e}"))?;
                l.anchorer = Some(a);
            }
            let seal = l.last_seal.elapsed() >= every;
            if seal {
                l.last_seal = std::time::Instant::now();
            }
            let a = l.anchorer.as_mut().expect("connected above");
            let sent = a.step(seal).await.map_err(|e| e.to_string())?;
            Ok(format!("{} batches sent", sent.len()))
        })
    });
    (spec, run)
}
