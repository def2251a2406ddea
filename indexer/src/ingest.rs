//! Ingestion: blocks in, exactly-once effect out, re-orgs at any depth the
//! undo logs still cover.
//!
//! Rules, in the order [`Indexer::ingest`] applies them:
//! 1. A block already known (connected or buffered) changes nothing:
//!    delivery is at least once, the effect is exactly once.
//! 2. A block that names itself as its parent is refused (a payload error:
//!    HTTP 400).
//! 3. The first block an empty index receives is its root.
//! 4. A block whose parent is known links only at the parent's height + 1;
//!    any other height is refused with a payload error and changes nothing.
//!    A stacks-node never sends such a block, and applying one would leave
//!    a hole in the canonical chain that no later block could re-org past.
//! 5. A block whose parent is unknown is buffered in `orphans` (durably,
//!    with a warning) and connected when the parent arrives — never applied
//!    on a guess. The one exception is not a guess: a height-1 block is a
//!    child of the genesis the index holds, whatever id it names (stacks-node
//!    announces the genesis under a sentinel id). The buffer is bounded: a
//!    block more than `undo_depth` above the tip is refused (payload error),
//!    and when `max_orphans` are waiting, blocks that can no longer connect
//!    (more than `undo_depth` below the tip) are dropped and, if it is still
//!    full, the block is refused with [`Error::BufferFull`] (HTTP 503: the
//!    node retries). When the parent arrives, each buffered child is checked
//!    again as in rule 4: one that does not link (or fails to connect) is
//!    dropped with what was buffered on it, and never blocks its parent.
//! 6. A block whose parent is known becomes the tip: the node sends a block
//!    once it considers it canonical (Hiro's API treats it the same way).
//!    If the parent is not the tip, the canonical chain is rolled back to
//!    the fork point with the undo logs and the new branch is applied from
//!    the stored blocks; all of it in one synced `WriteBatch`.
//!
//! These rules keep the index consistent with what it is sent; they do not
//! make a sender trustworthy. A block that links is applied whatever it
//! says, so the observer endpoint must be reachable only by the node (see
//! [`crate::server`]).

use std::path::Path;
use std::sync::{Arc, Mutex};

use medanchor_contracts::ContractName;
use rocksdb::WriteBatch;

use crate::apply::{apply, Ctx};
use crate::payload::{hex_bytes, NewBlock, NewBurnBlock};
use crate::schema::{self, BlockHeader, BlockRow, Cf, EventEntry, EventRow, TxEntry, TxRow, UndoLog};
use crate::store::{IndexDb, KeyValue, Stage, Write};
use crate::{Error, Result};

/// A block id as the node writes it, for messages.
fn id_hex(id: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(id))
}

/// What the indexer indexes and how much history it can undo.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    /// `address.patient-consent` on the watched network.
    pub consent_contract: String,
    /// `address.record-management`.
    pub records_contract: String,
    /// Blocks below the tip whose undo logs are kept: the deepest re-org
    /// the index can follow. Also how far above the tip a block with an
    /// unknown parent may be and still be buffered.
    pub undo_depth: u64,
    /// Blocks with unknown parents kept at most (`orphans`).
    pub max_orphans: usize,
}

impl IndexerConfig {
    /// Both contracts deployed by `deployer`, undo depth 10,000 blocks, at
    /// most 1,000 blocks buffered.
    pub fn for_deployer(deployer: &str) -> Self {
        IndexerConfig {
            consent_contract: format!("{deployer}.{}", ContractName::PatientConsent.name()),
            records_contract: format!("{deployer}.{}", ContractName::RecordManagement.name()),
            undo_depth: 10_000,
            max_orphans: 1_000,
        }
    }
}

/// What happened to a delivered block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It became the tip; `reorg_depth` canonical blocks were rolled back
    /// first (0 = it extended the tip). `connected` buffered descendants
    /// were applied after it.
    Applied {
        /// Its height.
        height: u64,
        /// Blocks rolled back.
        reorg_depth: u64,
        /// Buffered blocks connected after it.
        connected: usize,
    },
    /// Already known: nothing changed.
    Duplicate,
    /// Its parent is unknown: kept until the parent arrives.
    Buffered,
}

/// The indexer: the database and the single writer.
#[derive(Debug, Clone)]
pub struct Indexer {
    db: Arc<IndexDb>,
    config: Arc<IndexerConfig>,
    writer: Arc<Mutex<()>>,
}

fn contract_code(c: ContractName) -> u8 {
    match c {
        ContractName::PatientConsent => 0,
        ContractName::RecordManagement => 1,
    }
}

fn contract_of(code: u8) -> Result<ContractName> {
    match code {
        0 => Ok(ContractName::PatientConsent),
        1 => Ok(ContractName::RecordManagement),
        _ => Err(Error::Corrupt(format!("unknown contract code {code}"))),
    }
}

fn hex_vec(field: &str, s: &str) -> Result<Vec<u8>> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let mut out = vec![0; digits.len() / 2];
    if !crate::payload::decode_hex(digits.as_bytes(), &mut out) {
        return Err(Error::Payload(format!("{field} is not hex")));
    }
    Ok(out)
}

impl Indexer {
    /// Opens the index at `path`.
    pub fn open(path: &Path, config: IndexerConfig) -> Result<Indexer> {
        let db = IndexDb::open(path)?;
        Ok(Indexer { db: Arc::new(db), config: Arc::new(config), writer: Arc::new(Mutex::new(())) })
    }

    /// The database (for the query layer).
    pub fn db(&self) -> &Arc<IndexDb> {
        &self.db
    }

    /// The configuration.
    pub fn config(&self) -> &IndexerConfig {
        &self.config
    }

    /// Reduces a payload to what the index keeps.
    pub fn block_row(&self, block: &NewBlock) -> Result<BlockRow> {
        let mut txs = Vec::with_capacity(block.transactions.len());
        for tx in &block.transactions {
            txs.push(TxEntry {
                txid: hex_bytes("txid", &tx.txid)?,
                tx_index: tx.tx_index,
                status: tx.status.clone(),
                raw_result: if tx.raw_result.is_empty() { Vec::new() } else { hex_vec("raw_result", &tx.raw_result)? },
            });
        }
        let mut by_txid = std::collections::HashMap::with_capacity(txs.len());
        for t in &txs {
            by_txid.entry(t.txid).or_insert(t.tx_index);
        }
        let tx_index = |txid: &[u8; 32]| by_txid.get(txid).copied();
        let mut events = Vec::new();
        for e in &block.events {
            let Some(body) = &e.contract_event else { continue };
            if e.kind != "contract_event" || !e.committed || body.topic != "print" {
                continue;
            }
            let contract = if body.contract_identifier == self.config.consent_contract {
                ContractName::PatientConsent
            } else if body.contract_identifier == self.config.records_contract {
                ContractName::RecordManagement
            } else {
                continue;
            };
            let raw = body
                .raw_value
                .as_deref()
                .ok_or_else(|| Error::Payload(format!("event {} of our contract has no raw_value", e.event_index)))?;
            let txid = hex_bytes("event txid", &e.txid)?;
            let tx_index = tx_index(&txid).ok_or_else(|| {
                Error::Payload(format!("event {} names txid {} that is not in the block", e.event_index, e.txid))
            })?;
            events.push(EventEntry {
                txid,
                tx_index,
                event_index: e.event_index,
                contract: contract_code(contract),
                raw_value: hex_vec("raw_value", raw)?,
            });
        }
        // Nodes do not send events in order.
        events.sort_by_key(|e| e.event_index);
        Ok(BlockRow {
            height: block.block_height,
            id: block.id()?,
            parent: block.parent_id()?,
            burn_block_height: block.burn_block_height,
            time: block.block_time.unwrap_or(block.burn_block_time),
            txs,
            events,
        })
    }

    /// Parses and ingests a `/new_block` body.
    pub fn ingest_json(&self, body: &[u8]) -> Result<Outcome> {
        let block = NewBlock::parse(body)?;
        let row = self.block_row(&block)?;
        self.ingest(row)
    }

    /// Records a `/new_burn_block` (kept for status; derived state does
    /// not depend on it).
    pub fn ingest_burn_block(&self, body: &[u8]) -> Result<()> {
        let burn: NewBurnBlock =
            serde_json::from_slice(body).map_err(|e| Error::Payload(format!("/new_burn_block: {e}")))?;
        let hash: [u8; 32] = hex_bytes("burn_block_hash", &burn.burn_block_hash)?;
        let mut value = burn.burn_block_height.to_be_bytes().to_vec();
        value.extend_from_slice(&hash);
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = WriteBatch::default();
        batch.put_cf(self.db.cf(Cf::Meta), schema::meta::BURN, value);
        self.db.write(batch)
    }

    /// Ingests one block (see the module docs for the rules).
    pub fn ingest(&self, row: BlockRow) -> Result<Outcome> {
        self.ingest_with(row, &mut |_| {})
    }

    /// [`Indexer::ingest`], also returning the writes of every block it
    /// connected: one list per synced batch, exactly as committed
    /// (buffering or dropping an orphan writes outside these batches and is not
    /// included). For replaying the same writes elsewhere, as the raw-RocksDB
    /// baseline of `medanchor bench indexer` does.
    pub fn ingest_recorded(&self, row: BlockRow) -> Result<(Outcome, Vec<Vec<Write>>)> {
        let mut batches = Vec::new();
        let outcome = self.ingest_with(row, &mut |stage| batches.push(stage.writes()))?;
        Ok((outcome, batches))
    }

    /// [`Indexer::ingest`], calling `on_commit` with each stage just before
    /// it is committed.
    fn ingest_with(&self, row: BlockRow, on_commit: &mut dyn FnMut(&Stage<'_>)) -> Result<Outcome> {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if self.db.get(Cf::Blocks, &row.id)?.is_some() || self.is_buffered(&row)? {
            return Ok(Outcome::Duplicate);
        }
        if row.id == row.parent {
            return Err(Error::Payload(format!(
                "block {} at height {} names itself as its parent",
                id_hex(&row.id),
                row.height
            )));
        }
        let tip = self.db.get(Cf::Meta, schema::meta::TIP)?;
        let mut row = row;
        let mut parent = self.header(&row.parent)?;
        if parent.is_none() && row.height == 1 {
            // stacks-node 3.x announces the genesis under the boot sentinel
            // (index hash 0x55c9…, parent 0xff…ff), while height-1 blocks
            // may name the network's real genesis id as their parent (the
            // 2025 regtest fixture does). A chain has one block at height 0,
            // so a height-1 block's parent is the genesis the index holds:
            // link it there, or the whole chain would wait in `orphans`
            // forever. Stored with that parent, later re-orgs walk to it.
            if let Some(genesis) = self.db.get(Cf::Canonical, &0u64.to_be_bytes())? {
                row.parent = genesis.try_into().map_err(|_| Error::Corrupt("canonical genesis id".into()))?;
                parent = self.header(&row.parent)?;
            }
        }
        match (&tip, &parent) {
            (_, Some(parent)) => check_link(&row, parent)?,
            (Some(_), None) => return self.buffer(row),
            // The root.
            (None, None) => {}
        }
        let (height, reorg_depth) = self.connect(row.clone(), tip, None, on_commit)?;
        // Blocks that were waiting for this one (and their descendants).
        let mut connected = 0;
        let mut waiting = vec![BlockHeader::from(&row)];
        while let Some(parent) = waiting.pop() {
            for (key, child) in self.buffered_children(&parent.id)? {
                if let Err(e) = check_link(&child, &parent) {
                    tracing::warn!(error = %e, "a buffered block does not link to its parent: dropped");
                    self.drop_buffered(key, &child)?;
                    continue;
                }
                let header = BlockHeader::from(&child);
                let tip = self.db.get(Cf::Meta, schema::meta::TIP)?;
                match self.connect(child.clone(), tip, Some(key.clone()), on_commit) {
                    Ok(_) => {
                        connected += 1;
                        waiting.push(header);
                    }
                    // The disk failed: so does this delivery (5xx). The
                    // child stays buffered.
                    Err(e @ Error::Storage(_)) => return Err(e),
                    // Nothing of it was written: it can never connect, and
                    // must not hold up its parent.
                    Err(e) => {
                        tracing::error!(
                            height = child.height,
                            block = %id_hex(&child.id),
                            error = %e,
                            "a buffered block failed to connect: dropped"
                        );
                        self.drop_buffered(key, &child)?;
                    }
                }
            }
        }
        Ok(Outcome::Applied { height, reorg_depth, connected })
    }

    /// The leading fields of a stored block, if it is stored.
    fn header(&self, id: &[u8; 32]) -> Result<Option<BlockHeader>> {
        self.db.get(Cf::Blocks, id)?.map(|bytes| schema::decode::<BlockHeader>("block", &bytes)).transpose()
    }

    /// Buffers `row`, whose parent is unknown, within the buffer's bounds.
    fn buffer(&self, row: BlockRow) -> Result<Outcome> {
        let tip: BlockHeader = self
            .db
            .get(Cf::Meta, schema::meta::TIP_HEADER)?
            .map(|bytes| schema::decode("tip header", &bytes))
            .transpose()?
            .ok_or_else(|| Error::Corrupt("a tip without its header".into()))?;
        let undo_depth = self.config.undo_depth;
        if row.height > tip.height.saturating_add(undo_depth) {
            return Err(Error::Payload(format!(
                "block {} at height {} has an unknown parent {} and is more than {undo_depth} blocks above the \
                 tip (height {}): refused, not buffered",
                id_hex(&row.id),
                row.height,
                id_hex(&row.parent),
                tip.height
            )));
        }
        let mut batch = WriteBatch::default();
        let buffered = self.buffered()?;
        if buffered.len() >= self.config.max_orphans {
            // Blocks too far below the tip to connect without a re-org
            // deeper than the undo kept make room first.
            let stale: Vec<&(Vec<u8>, BlockHeader)> =
                buffered.iter().filter(|(_, h)| h.height.saturating_add(undo_depth) < tip.height).collect();
            if buffered.len() - stale.len() >= self.config.max_orphans {
                tracing::warn!(
                    height = row.height,
                    block = %id_hex(&row.id),
                    buffered = buffered.len(),
                    "the orphan buffer is full: block refused"
                );
                return Err(Error::BufferFull { kept: buffered.len() });
            }
            for (key, header) in stale {
                tracing::warn!(
                    height = header.height,
                    block = %id_hex(&header.id),
                    "a buffered block too far below the tip to connect: dropped"
                );
                batch.delete_cf(self.db.cf(Cf::Orphans), key);
            }
        }
        tracing::warn!(
            height = row.height,
            block = %id_hex(&row.id),
            parent = %id_hex(&row.parent),
            "block with an unknown parent: buffered until the parent arrives"
        );
        batch.put_cf(self.db.cf(Cf::Orphans), orphan_key(&row.parent, &row.id), schema::encode(&row));
        self.db.write(batch)?;
        Ok(Outcome::Buffered)
    }

    /// Every buffered block's key and header.
    fn buffered(&self) -> Result<Vec<(Vec<u8>, BlockHeader)>> {
        let snapshot = self.db.snapshot();
        self.db
            .scan_prefix(&snapshot, Cf::Orphans, Vec::new(), &[])
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), schema::decode::<BlockHeader>("orphan", &v)?))
            })
            .collect()
    }

    /// Removes a buffered block, and whatever was buffered on it, from the
    /// buffer: none of them can connect any more.
    fn drop_buffered(&self, key: Vec<u8>, row: &BlockRow) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.db.cf(Cf::Orphans), key);
        let mut below = vec![row.id];
        while let Some(id) = below.pop() {
            for (key, child) in self.buffered_children(&id)? {
                tracing::warn!(
                    height = child.height,
                    block = %id_hex(&child.id),
                    "a buffered block whose parent was dropped: dropped"
                );
                batch.delete_cf(self.db.cf(Cf::Orphans), key);
                below.push(child.id);
            }
        }
        self.db.write(batch)
    }

    fn is_buffered(&self, row: &BlockRow) -> Result<bool> {
        Ok(self.db.get(Cf::Orphans, &orphan_key(&row.parent, &row.id))?.is_some())
    }

    /// Buffered blocks whose parent is `parent`, with their `orphans` keys.
    /// They leave the buffer in the same batch that connects them, so a
    /// failure in between loses nothing.
    fn buffered_children(&self, parent: &[u8; 32]) -> Result<Vec<(Vec<u8>, BlockRow)>> {
        let snapshot = self.db.snapshot();
        let found: Vec<KeyValue> =
            self.db.scan_prefix(&snapshot, Cf::Orphans, parent.to_vec(), parent).collect::<Result<_>>()?;
        found.iter().map(|(k, v)| Ok((k.to_vec(), schema::decode::<BlockRow>("orphan", v)?))).collect()
    }

    /// Makes `row` (whose parent is known, or which is the root) the tip;
    /// `orphan_key` is its entry in the buffer, if it was buffered.
    fn connect(
        &self,
        row: BlockRow,
        tip: Option<Vec<u8>>,
        orphan_key: Option<Vec<u8>>,
        on_commit: &mut dyn FnMut(&Stage<'_>),
    ) -> Result<(u64, u64)> {
        let mut stage = Stage::new(&self.db);
        if let Some(key) = orphan_key {
            stage.delete(Cf::Orphans, key)?;
        }
        let mut depth = 0;
        if let Some(tip) = tip {
            let tip: [u8; 32] = tip.try_into().map_err(|_| Error::Corrupt("tip marker".into()))?;
            if tip != row.parent {
                depth = self.reorg(&mut stage, tip, row.parent)?;
                tracing::info!(
                    depth,
                    height = row.height,
                    block = %hex::encode(row.id),
                    "re-org: rolled back to the fork point and applied the new branch"
                );
            }
        }
        let height = row.height;
        self.apply_block(&mut stage, &row)?;
        stage.put(Cf::Blocks, row.id.to_vec(), schema::encode(&row))?;
        stage.put(Cf::Meta, schema::meta::TIP.to_vec(), row.id.to_vec())?;
        stage.put(Cf::Meta, schema::meta::TIP_HEADER.to_vec(), schema::encode(&BlockHeader::from(&row)))?;
        on_commit(&stage);
        stage.commit()?;
        Ok((height, depth))
    }

    /// Rolls the canonical chain back from `tip` to the fork point with the
    /// branch ending in `new_parent`, then applies that branch. Returns the
    /// number of blocks rolled back.
    fn reorg(&self, stage: &mut Stage<'_>, tip: [u8; 32], new_parent: [u8; 32]) -> Result<u64> {
        // The new branch, newest first, down to a block on the canonical
        // chain. Heights fall strictly along parents (blocks link at their
        // parent's height + 1), so the walk ends.
        let mut branch = Vec::new();
        let mut cursor = new_parent;
        let mut below = u64::MAX;
        let fork_height = loop {
            let row: BlockRow = stage.row(Cf::Blocks, &cursor)?.ok_or_else(|| {
                Error::Invariant(format!("ancestor {} of a connected block is missing", hex::encode(cursor)))
            })?;
            if row.height >= below {
                return Err(Error::Corrupt(format!("block {} is not below its child", id_hex(&cursor))));
            }
            below = row.height;
            let canonical = stage.get(Cf::Canonical, &row.height.to_be_bytes())?;
            if canonical.as_deref() == Some(&cursor[..]) {
                break row.height;
            }
            cursor = row.parent;
            branch.push(row);
        };
        let fork = cursor;
        let tip_header: BlockHeader =
            stage.row(Cf::Blocks, &tip)?.ok_or_else(|| Error::Corrupt("tip block is not stored".into()))?;
        let depth = tip_header.height.saturating_sub(fork_height);
        // Roll back from the tip along parents down to the fork point.
        let mut cursor = tip_header;
        while cursor.id != fork {
            if cursor.height <= fork_height {
                return Err(Error::Corrupt(format!(
                    "the canonical chain from the tip does not lead back to block {} at height {fork_height}",
                    id_hex(&fork)
                )));
            }
            let log: UndoLog =
                stage.row(Cf::Undo, &cursor.id)?.ok_or(Error::ReorgTooDeep { depth, kept: self.config.undo_depth })?;
            stage.restore(&log)?;
            stage.delete(Cf::Undo, cursor.id.to_vec())?;
            cursor = stage
                .row(Cf::Blocks, &cursor.parent)?
                .ok_or_else(|| Error::Corrupt(format!("canonical block {} is not stored", id_hex(&cursor.parent))))?;
        }
        for row in branch.iter().rev() {
            self.apply_block(stage, row)?;
        }
        Ok(depth)
    }

    /// Applies a block on top of the stage's canonical chain.
    fn apply_block(&self, stage: &mut Stage<'_>, row: &BlockRow) -> Result<()> {
        stage.begin_block();
        stage.put(Cf::Canonical, row.height.to_be_bytes().to_vec(), row.id.to_vec())?;
        for tx in &row.txs {
            let tx_row = TxRow {
                block: row.id,
                height: row.height,
                tx_index: tx.tx_index,
                status: tx.status.clone(),
                raw_result: tx.raw_result.clone(),
            };
            stage.put_row(Cf::Txs, tx.txid.to_vec(), &tx_row)?;
        }
        for e in &row.events {
            let contract = contract_of(e.contract)?;
            let event_row =
                EventRow { block: row.id, txid: e.txid, contract: e.contract, raw_value: e.raw_value.clone() };
            stage.put_row(Cf::Events, schema::key::position(row.height, e.tx_index, e.event_index), &event_row)?;
            let decoded = medanchor_contracts::ClarityValue::deserialize(&e.raw_value)
                .map_err(|err| err.to_string())
                .and_then(|v| medanchor_contracts::decode_print(contract, &v).map_err(|err| err.to_string()));
            match decoded {
                Ok(event) => {
                    let ctx = Ctx {
                        height: row.height,
                        block: row.id,
                        time: row.time,
                        txid: e.txid,
                        tx_index: e.tx_index,
                        event_index: e.event_index,
                    };
                    apply(stage, &ctx, &event)?;
                }
                // A print our decoders do not know (a newer contract
                // version): kept in `events`, loudly skipped for state.
                Err(err) => tracing::error!(
                    height = row.height,
                    txid = %hex::encode(e.txid),
                    event_index = e.event_index,
                    error = %err,
                    "undecodable event of our contract; derived state skips it"
                ),
            }
        }
        let log = stage.end_block()?;
        stage.put(Cf::Undo, row.id.to_vec(), schema::encode(&log))?;
        // Undo logs older than the depth are pruned.
        if row.height >= self.config.undo_depth {
            let old = row.height - self.config.undo_depth;
            if let Some(id) = stage.get(Cf::Canonical, &old.to_be_bytes())? {
                stage.delete(Cf::Undo, id)?;
            }
        }
        Ok(())
    }
}

/// Rule 4: `row` links to `parent` only at the parent's height + 1.
fn check_link(row: &BlockRow, parent: &BlockHeader) -> Result<()> {
    if parent.height.checked_add(1) == Some(row.height) {
        return Ok(());
    }
    Err(Error::Payload(format!(
        "block {} claims height {} but its parent {} is at height {}: a block is at its parent's height + 1",
        id_hex(&row.id),
        row.height,
        id_hex(&row.parent),
        parent.height
    )))
}

fn orphan_key(parent: &[u8; 32], id: &[u8; 32]) -> Vec<u8> {
    let mut k = parent.to_vec();
    k.extend_from_slice(id);
    k
}
