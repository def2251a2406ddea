//! The transaction pool: validated transactions waiting for a block,
//! ordered by sender nonce, bounded, idempotent for duplicates.

use std::collections::{BTreeMap, HashMap};

use clarity_repl::clarity::vm::types::PrincipalData;

use crate::chain::{Candidate, Chain, RejectReason, Rejection};

/// Most pending transactions one sender may chain (stacks-node's limit).
pub const MAX_CHAIN_PER_SENDER: usize = 25;

#[derive(Debug, Clone)]
struct Entry {
    candidate: Candidate,
    sender: String,
    nonce: u64,
    fee: u64,
    arrival: u64,
}

/// Pending transactions.
#[derive(Debug)]
pub struct Mempool {
    by_txid: HashMap<[u8; 32], Entry>,
    by_sender: BTreeMap<(String, u64), [u8; 32]>,
    arrivals: u64,
    capacity: usize,
}

/// What admitting a transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// New in the pool.
    New,
    /// Already there (a re-broadcast): nothing changed.
    Duplicate,
    /// It replaced a lower-fee transaction with the same nonce.
    Replaced([u8; 32]),
}

impl Mempool {
    /// An empty pool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Mempool { by_txid: HashMap::new(), by_sender: BTreeMap::new(), arrivals: 0, capacity }
    }

    /// How many transactions wait.
    pub fn len(&self) -> usize {
        self.by_txid.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.by_txid.is_empty()
    }

    /// Whether a transaction is pending.
    pub fn contains(&self, txid: &[u8; 32]) -> bool {
        self.by_txid.contains_key(txid)
    }

    /// The highest pending nonce of a sender.
    pub fn last_nonce(&self, sender: &str) -> Option<u64> {
        self.by_sender.range((sender.to_string(), 0)..=(sender.to_string(), u64::MAX)).next_back().map(|((_, n), _)| *n)
    }

    /// Validates against the tip and admits.
    pub fn admit(&mut self, chain: &Chain, candidate: Candidate) -> Result<Admitted, Rejection> {
        let txid = candidate.txid();
        if self.by_txid.contains_key(&txid) {
            return Ok(Admitted::Duplicate);
        }
        chain.validate(&candidate)?;
        let sender = PrincipalData::from(candidate.tx.origin_address()).to_string();
        let nonce = candidate.tx.get_origin_nonce();
        let fee = candidate.tx.get_tx_fee();
        let mut replaced = None;
        if let Some(existing) = self.by_sender.get(&(sender.clone(), nonce)).copied() {
            let old_fee = self.by_txid[&existing].fee;
            if fee <= old_fee {
                return Err(Rejection::new(
                    RejectReason::TooMuchChaining,
                    format!("nonce {nonce} is already pending with fee {old_fee}; replace it with a higher fee"),
                ));
            }
            self.remove(&existing);
            replaced = Some(existing);
        }
        let pending = self.by_sender.range((sender.clone(), 0)..=(sender.clone(), u64::MAX)).count();
        if pending >= MAX_CHAIN_PER_SENDER {
            return Err(Rejection::new(
                RejectReason::TooMuchChaining,
                format!("{sender} already has {pending} pending transactions"),
            ));
        }
        if self.by_txid.len() >= self.capacity {
            return Err(Rejection::new(RejectReason::TooMuchChaining, "the mempool is full"));
        }
        self.arrivals += 1;
        self.by_sender.insert((sender.clone(), nonce), txid);
        self.by_txid.insert(txid, Entry { candidate, sender, nonce, fee, arrival: self.arrivals });
        Ok(match replaced {
            Some(old) => Admitted::Replaced(old),
            None => Admitted::New,
        })
    }

    /// Removes a transaction (mined or dropped).
    pub fn remove(&mut self, txid: &[u8; 32]) -> Option<Candidate> {
        let entry = self.by_txid.remove(txid)?;
        self.by_sender.remove(&(entry.sender, entry.nonce));
        Some(entry.candidate)
    }

    /// Candidates for the next block: senders in order of their oldest
    /// pending transaction, each sender's transactions in nonce order.
    pub fn candidates(&self) -> Vec<Candidate> {
        let mut senders: BTreeMap<&str, (u64, Vec<&Entry>)> = BTreeMap::new();
        for entry in self.by_txid.values() {
            let slot = senders.entry(&entry.sender).or_insert((u64::MAX, Vec::new()));
            slot.0 = slot.0.min(entry.arrival);
            slot.1.push(entry);
        }
        let mut senders: Vec<(u64, Vec<&Entry>)> = senders.into_values().collect();
        senders.sort_by_key(|(arrival, _)| *arrival);
        senders
            .into_iter()
            .flat_map(|(_, mut entries)| {
                entries.sort_by_key(|e| e.nonce);
                entries.into_iter().map(|e| e.candidate.clone())
            })
            .collect()
    }
}
