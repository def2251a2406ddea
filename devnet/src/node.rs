//! The running devnet node: chain + mempool behind one lock, a block
//! producer on a timer (and on demand), the RPC server and the event
//! observers.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medanchor_wallet::accounts::DevnetAccount;
use tokio::sync::{watch, Notify};

use crate::chain::{Candidate, Chain, Mined, Rejection};
use crate::genesis::chain_config;
use crate::headers::Header;
use crate::mempool::{Admitted, Mempool};
use crate::observer::{Dispatcher, MempoolEvent};
use crate::{Error, Result};

/// How the node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the chain database lives.
    pub data_dir: PathBuf,
    /// The devnet accounts (genesis).
    pub accounts: Vec<DevnetAccount>,
    /// Mine a block this often; `None` mines only on demand.
    pub block_interval: Option<Duration>,
    /// Burn blocks each Stacks block advances (the devnet's clock for
    /// `burn-block-height` expiries).
    pub burn_blocks_per_block: u32,
    /// Event observers as `host:port`.
    pub observers: Vec<String>,
    /// Most transactions the mempool holds.
    pub mempool_capacity: usize,
    /// How long one delivery to an observer may take before it is retried
    /// (stacks-node's `timeout_ms`).
    pub observer_timeout: Duration,
}

impl NodeConfig {
    /// Defaults: a block a second, one burn block per block, no observers.
    pub fn new(data_dir: PathBuf, accounts: Vec<DevnetAccount>) -> Self {
        NodeConfig {
            data_dir,
            accounts,
            block_interval: Some(Duration::from_secs(1)),
            burn_blocks_per_block: 1,
            observers: Vec::new(),
            mempool_capacity: 100_000,
            observer_timeout: Duration::from_secs(5),
        }
    }
}

/// Chain and mempool, changed together under one lock.
#[derive(Debug)]
pub struct NodeState {
    /// The chain.
    pub chain: Chain,
    /// Pending transactions.
    pub mempool: Mempool,
    /// Extra burn blocks to add with the next block.
    pub pending_burn_advance: u32,
}

/// A running devnet node (cheap to clone).
#[derive(Clone, Debug)]
pub struct Node {
    state: Arc<Mutex<NodeState>>,
    config: Arc<NodeConfig>,
    mined: Arc<Notify>,
    dispatcher: Arc<Dispatcher>,
}

/// Tells background tasks to stop. A level, not an edge: a task that is
/// busy when the node stops still sees it the next time it looks
/// (`Notify::notify_waiters` would be missed, and the node would hang).
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves once the node is stopping.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the sender is gone: stopping as well.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Node {
    /// Opens (or creates) the chain and prepares the node.
    pub fn open(config: NodeConfig) -> Result<Node> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::Storage(format!("{}: {e}", config.data_dir.display())))?;
        let chain = Chain::open(&config.data_dir.join("chain"), chain_config(&config.accounts, now())?)?;
        let mempool = Mempool::new(config.mempool_capacity);
        let dispatcher = Arc::new(Dispatcher::new(config.observers.clone(), config.observer_timeout));
        Ok(Node {
            state: Arc::new(Mutex::new(NodeState { chain, mempool, pending_burn_advance: 0 })),
            config: Arc::new(config),
            mined: Arc::new(Notify::new()),
            dispatcher,
        })
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Locks chain and mempool. Held only for short reads or one block.
    pub fn lock(&self) -> MutexGuard<'_, NodeState> {
        // A panic while holding the lock is a bug; the state behind it is
        // still consistent (blocks commit atomically), so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Validates and admits a raw transaction; returns its txid.
    pub fn submit(&self, raw: &[u8]) -> std::result::Result<[u8; 32], Rejection> {
        let candidate = Candidate::decode(raw)?;
        let txid = candidate.txid();
        let admitted = {
            let mut state = self.lock();
            let NodeState { chain, mempool, .. } = &mut *state;
            if chain.tx_location(&txid).map_err(Rejection::from)?.is_some() {
                // Already mined: a re-broadcast changes nothing.
                return Ok(txid);
            }
            mempool.admit(chain, candidate)?
        };
        match admitted {
            Admitted::New => self.dispatcher.mempool(MempoolEvent::New(raw.to_vec())),
            Admitted::Replaced(old) => {
                self.dispatcher.mempool(MempoolEvent::New(raw.to_vec()));
                self.dispatcher.mempool(MempoolEvent::Dropped { txids: vec![old], reason: "ReplaceByFee" });
            }
            Admitted::Duplicate => {}
        }
        Ok(txid)
    }

    /// Mines one block now from the mempool (blocking: call from a
    /// blocking context). `extra_burn` burn blocks are added on top of the
    /// schedule.
    pub fn mine_block(&self, extra_burn: u32) -> Result<Mined> {
        let mined = {
            let mut state = self.lock();
            let NodeState { chain, mempool, pending_burn_advance } = &mut *state;
            let burn = self.config.burn_blocks_per_block + extra_burn + std::mem::take(pending_burn_advance);
            let timestamp = now().max(chain.tip().timestamp);
            let mined = chain.mine_block(mempool.candidates(), burn, timestamp)?;
            for receipt in &mined.block.receipts {
                if let Ok(bytes) = hex::decode(&receipt.txid[2..]) {
                    if let Ok(txid) = <[u8; 32]>::try_from(bytes.as_slice()) {
                        mempool.remove(&txid);
                    }
                }
            }
            for (candidate, _) in &mined.dropped {
                mempool.remove(&candidate.txid());
            }
            mined
        };
        if !mined.dropped.is_empty() {
            let txids = mined.dropped.iter().map(|(c, _)| c.txid()).collect();
            self.dispatcher.mempool(MempoolEvent::Dropped { txids, reason: "Problematic" });
        }
        tracing::debug!(height = mined.block.header.height, txs = mined.block.receipts.len(), "mined block");
        self.mined.notify_waiters();
        self.dispatcher.block_mined();
        Ok(mined)
    }

    /// Mines `count` blocks now (async: runs on the blocking pool).
    pub async fn mine_blocks(&self, count: u32, extra_burn: u32) -> Result<Vec<Header>> {
        let node = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut headers = Vec::new();
            for i in 0..count {
                let extra = if i == 0 { extra_burn } else { 0 };
                headers.push(node.mine_block(extra)?.block.header);
            }
            Ok(headers)
        })
        .await
        .map_err(|e| Error::Storage(format!("mining task: {e}")))?
    }

    /// Runs the RPC server on `listener`, the block producer and the
    /// observers until `shutdown` resolves.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop = StopSignal(stop_rx);
        let dispatcher = self.dispatcher.clone();
        let observers = tokio::spawn(dispatcher.run(self.clone(), stop.clone()));
        let producer = self.config.block_interval.map(|interval| {
            let node = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = ticker.tick() => {
                            if let Err(e) = node.mine_blocks(1, 0).await {
                                tracing::error!(error = %e, "block production failed");
                            }
                        }
                        _ = stop.wait() => break,
                    }
                }
            })
        });
        let app = crate::rpc::router(self.clone());
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopped_tx.send(());
        });
        // Graceful shutdown waits for open connections, and HTTP clients
        // keep idle ones open: give in-flight requests 3 s, then stop.
        let result = tokio::select! {
            r = server => r.map_err(|e| Error::Storage(format!("rpc server: {e}"))),
            _ = async {
                let _ = stopped_rx.await;
                tokio::time::sleep(Duration::from_secs(3)).await;
            } => Ok(()),
        };
        let _ = stop_tx.send(true);
        if let Some(p) = producer {
            let _ = p.await;
        }
        let _ = observers.await;
        result
    }

    /// Waits until a block is mined (for pollers such as `wait_for_tx`).
    pub async fn block_mined(&self) {
        self.mined.notified().await
    }
}
