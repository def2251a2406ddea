//! Event observers: stacks-node's event-dispatcher protocol.
//!
//! Blocks are delivered the way the real node does it — at least once, in
//! order, retried with backoff until the observer answers exactly 200, and
//! resumed after a restart. The payload of a block is built from the
//! stored block, which is committed before anyone is told about it, so
//! "persisted before sending" holds by construction; each observer's
//! delivery cursor is persisted only after its 200. Mempool notifications
//! (`/new_mempool_tx`, `/drop_mempool_tx`) are retried the same way but
//! not persisted across restarts (stacks-node does not replay them either).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocksdb::WriteBatch;
use serde_json::{json, Value as Json};
use tokio::sync::Notify;

use crate::node::StopSignal;

use crate::chain::StoredBlock;
use crate::headers::Header;
use crate::node::Node;
use crate::store::CF_META;

/// A mempool change to announce.
#[derive(Debug, Clone)]
pub enum MempoolEvent {
    /// A transaction was admitted.
    New(Vec<u8>),
    /// Transactions left the mempool without being mined.
    Dropped {
        /// Their ids.
        txids: Vec<[u8; 32]>,
        /// stacks-node's reason name.
        reason: &'static str,
    },
}

/// Delivers events to the configured observers.
#[derive(Debug)]
pub struct Dispatcher {
    observers: Vec<String>,
    queues: Mutex<Vec<VecDeque<(String, Json)>>>,
    wake: Notify,
    timeout: Duration,
}

impl Dispatcher {
    /// A dispatcher for `host:port` observers.
    pub fn new(observers: Vec<String>, timeout: Duration) -> Self {
        let queues = Mutex::new(observers.iter().map(|_| VecDeque::new()).collect());
        Dispatcher { observers, queues, wake: Notify::new(), timeout }
    }

    /// Queues a mempool notification for every observer.
    pub fn mempool(&self, event: MempoolEvent) {
        if self.observers.is_empty() {
            return;
        }
        let (path, body) = match event {
            MempoolEvent::New(raw) => ("/new_mempool_tx", json!([format!("0x{}", hex::encode(raw))])),
            MempoolEvent::Dropped { txids, reason } => (
                "/drop_mempool_tx",
                json!({
                    "dropped_txids": txids.iter().map(|t| format!("0x{}", hex::encode(t))).collect::<Vec<_>>(),
                    "reason": reason,
                    "new_txid": null,
                }),
            ),
        };
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        for q in queues.iter_mut() {
            q.push_back((path.to_string(), body.clone()));
        }
        drop(queues);
        self.wake.notify_waiters();
    }

    /// A block was committed.
    pub fn block_mined(&self) {
        self.wake.notify_waiters();
    }

    /// Delivers until `stop` fires.
    pub async fn run(self: Arc<Self>, node: Node, stop: StopSignal) {
        let client = match reqwest::Client::builder().timeout(self.timeout).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the observer HTTP client");
                return;
            }
        };
        let tasks: Vec<_> = (0..self.observers.len())
            .map(|i| {
                let me = self.clone();
                let node = node.clone();
                let stop = stop.clone();
                let client = client.clone();
                tokio::spawn(async move { me.observe(i, node, client, stop).await })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn observe(&self, i: usize, node: Node, client: reqwest::Client, stop: StopSignal) {
        let endpoint = self.observers[i].clone();
        let cursor_key = format!("observer/{endpoint}");
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if !self.drain_mempool(i, &client, &endpoint, &stop).await {
                return;
            }
            // Then every block after the cursor; mempool notifications that
            // arrive meanwhile go out before the next block, so an observer
            // sees events in the order they happened.
            loop {
                if !self.drain_mempool(i, &client, &endpoint, &stop).await {
                    return;
                }
                let (next, payloads) = {
                    let state = node.lock();
                    let chain = &state.chain;
                    let cursor = chain
                        .db()
                        .get(CF_META, cursor_key.as_bytes())
                        .ok()
                        .flatten()
                        .and_then(|v| v.try_into().ok().map(u64::from_be_bytes));
                    let next = cursor.map_or(0, |c| c + 1);
                    if next > chain.tip().height {
                        break;
                    }
                    let block = match chain.block(next) {
                        Ok(Some(b)) => b,
                        _ => break,
                    };
                    let parent = if next == 0 { None } else { chain.block(next - 1).ok().flatten() };
                    (next, block_payloads(&block, parent.as_ref().map(|p| &p.header)))
                };
                for (path, body) in &payloads {
                    if !post_until_ok(&client, &endpoint, path, body, &stop).await {
                        return;
                    }
                }
                let state = node.lock();
                let mut batch = WriteBatch::default();
                batch.put_cf(state.chain.db().cf(CF_META), cursor_key.as_bytes(), next.to_be_bytes());
                if let Err(e) = state.chain.db().write(batch) {
                    tracing::error!(error = %e, observer = %endpoint, "cannot persist the delivery cursor");
                }
            }
            tokio::select! {
                _ = woken => {}
                _ = stop.wait() => return,
            }
        }
    }
}

impl Dispatcher {
    /// Delivers observer `i`'s queued mempool notifications, in order.
    /// Returns false if stopped first.
    async fn drain_mempool(&self, i: usize, client: &reqwest::Client, endpoint: &str, stop: &StopSignal) -> bool {
        loop {
            let next = self.queues.lock().unwrap_or_else(|p| p.into_inner())[i].front().cloned();
            let Some((path, body)) = next else { return true };
            if !post_until_ok(client, endpoint, &path, &body, stop).await {
                return false;
            }
            self.queues.lock().unwrap_or_else(|p| p.into_inner())[i].pop_front();
        }
    }
}

/// POSTs until the observer answers 200 (backoff 100 ms doubling to 5 s).
/// Returns false if stopped first.
async fn post_until_ok(client: &reqwest::Client, endpoint: &str, path: &str, body: &Json, stop: &StopSignal) -> bool {
    let url = format!("http://{endpoint}{path}");
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.post(&url).json(body).send().await {
            Ok(resp) if resp.status() == reqwest::StatusCode::OK => return true,
            Ok(resp) => tracing::warn!(%url, status = %resp.status(), "observer refused an event; retrying"),
            Err(e) => tracing::warn!(%url, error = %e, "observer unreachable; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait() => return false,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The `/new_burn_block` (when the burn height moved) and `/new_block`
/// payloads of a stored block.
pub fn block_payloads(block: &StoredBlock, parent: Option<&Header>) -> Vec<(String, Json)> {
    let h = &block.header;
    let mut out = Vec::new();
    if parent.is_none_or(|p| p.burn_block_height != h.burn_block_height) {
        out.push((
            "/new_burn_block".to_string(),
            json!({
                "burn_block_hash": hex0x(&h.burn_block_hash),
                "burn_block_height": h.burn_block_height,
                "reward_recipients": [],
                "reward_slot_holders": [],
                "burn_amount": 0,
                "consensus_hash": hex0x(&h.consensus_hash),
                "parent_burn_block_hash": hex0x(&parent.map(|p| p.burn_block_hash).unwrap_or_default()),
            }),
        ));
    }
    let mut events = Vec::new();
    for receipt in &block.receipts {
        for event in &receipt.events {
            let mut event = event.clone();
            event["event_index"] = json!(events.len());
            events.push(event);
        }
    }
    let cost = |c: &crate::vm::Cost| {
        json!({
            "read_count": c.read_count, "read_length": c.read_length, "runtime": c.runtime,
            "write_count": c.write_count, "write_length": c.write_length,
        })
    };
    let transactions: Vec<Json> = block
        .receipts
        .iter()
        .map(|r| {
            json!({
                "txid": r.txid,
                "tx_index": r.tx_index,
                "status": r.status.as_str(),
                "raw_result": r.raw_result,
                "raw_tx": r.raw_tx,
                "contract_interface": r.contract_interface,
                "execution_cost": cost(&r.execution_cost),
                "microblock_sequence": null,
                "microblock_hash": null,
                "microblock_parent_hash": null,
                "vm_error": r.vm_error,
                "burnchain_op": null,
            })
        })
        .collect();
    let zero32 = hex0x(&[0u8; 32]);
    out.push((
        "/new_block".to_string(),
        json!({
            "block_hash": hex0x(&h.block_hash),
            "block_height": h.height,
            "block_time": h.timestamp,
            "burn_block_hash": hex0x(&h.burn_block_hash),
            "burn_block_height": h.burn_block_height,
            "burn_block_time": h.burn_block_time,
            "index_block_hash": hex0x(&h.index_block_hash),
            "parent_block_hash": hex0x(&h.parent_block_hash),
            "parent_index_block_hash": hex0x(&h.parent_index_block_hash),
            "parent_burn_block_hash": hex0x(&parent.map(|p| p.burn_block_hash).unwrap_or_default()),
            "parent_burn_block_height": parent.map_or(0, |p| p.burn_block_height),
            "parent_burn_block_timestamp": parent.map_or(0, |p| p.burn_block_time),
            "parent_microblock": zero32,
            "parent_microblock_sequence": 0,
            "miner_txid": zero32,
            "matured_miner_rewards": [],
            "events": events,
            "transactions": transactions,
            "anchored_cost": cost(&block.cost),
            "confirmed_microblocks_cost": cost(&crate::vm::Cost::default()),
            "tenure_height": h.height,
            "consensus_hash": hex0x(&h.consensus_hash),
            "pox_v1_unlock_height": 0,
            "pox_v2_unlock_height": 0,
            "pox_v3_unlock_height": 0,
        }),
    ));
    out
}
