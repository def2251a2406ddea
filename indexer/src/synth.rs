//! Synthetic `/new_block` payloads in stacks-node's shape, carrying our
//! contracts' events encoded exactly as the contracts print them
//! ([`medanchor_contracts::encode_print`]). For scenario tests and the
//! ingest benchmark, where driving the real chain would be too slow or
//! could not produce forks.

use medanchor_contracts::{encode_print, ContractEvent};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A deterministic 32-byte id from a label (block ids, txids).
pub fn id(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

fn h(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// One transaction and the events it printed.
#[derive(Debug, Clone)]
pub struct SynthTx {
    /// Its txid.
    pub txid: [u8; 32],
    /// `success`, `abort_by_response`, …
    pub status: &'static str,
    /// (`address.contract`, event) in print order.
    pub events: Vec<(String, ContractEvent)>,
}

/// One block.
#[derive(Debug, Clone)]
pub struct SynthBlock {
    /// Stacks height.
    pub height: u64,
    /// Index block hash.
    pub id: [u8; 32],
    /// Parent's index block hash.
    pub parent: [u8; 32],
    /// Burn height.
    pub burn_block_height: u64,
    /// Unix time.
    pub time: u64,
    /// Transactions.
    pub txs: Vec<SynthTx>,
}

impl SynthBlock {
    /// The `/new_block` body. Events are numbered across the block as the
    /// node numbers them; failed transactions carry none, as on Stacks.
    pub fn to_json(&self) -> Value {
        let mut events = Vec::new();
        let mut transactions = Vec::new();
        for (tx_index, tx) in self.txs.iter().enumerate() {
            transactions.push(json!({
                "txid": h(&tx.txid),
                "tx_index": tx_index,
                "status": tx.status,
                "raw_result": if tx.status == "success" { "0x070301" } else { "0x08010000000000000000000000000000006b" },
                "raw_tx": "0x00",
                "contract_interface": null,
                "execution_cost": { "read_count": 0, "read_length": 0, "runtime": 0, "write_count": 0, "write_length": 0 },
                "microblock_sequence": null,
                "microblock_hash": null,
                "microblock_parent_hash": null,
                "vm_error": null,
            }));
            if tx.status != "success" {
                continue;
            }
            for (contract, event) in &tx.events {
                let index = events.len();
                events.push(json!({
                    "txid": h(&tx.txid),
                    "event_index": index,
                    "committed": true,
                    "type": "contract_event",
                    "contract_event": {
                        "contract_identifier": contract,
                        "topic": "print",
                        "raw_value": h(&encode_print(event).serialize()),
                    },
                }));
            }
        }
        json!({
            "block_hash": h(&id(&format!("block-hash-{}", hex::encode(self.id)))),
            "block_height": self.height,
            "block_time": self.time,
            "burn_block_hash": h(&id(&format!("burn-{}", self.burn_block_height))),
            "burn_block_height": self.burn_block_height,
            "burn_block_time": self.time,
            "index_block_hash": h(&self.id),
            "parent_block_hash": h(&id(&format!("block-hash-{}", hex::encode(self.parent)))),
            "parent_index_block_hash": h(&self.parent),
            "parent_microblock": h(&[0; 32]),
            "parent_microblock_sequence": 0,
            "miner_txid": h(&[0; 32]),
            "matured_miner_rewards": [],
            "events": events,
            "transactions": transactions,
            "anchored_cost": { "read_count": 0, "read_length": 0, "runtime": 0, "write_count": 0, "write_length": 0 },
            "confirmed_microblocks_cost": { "read_count": 0, "read_length": 0, "runtime": 0, "write_count": 0, "write_length": 0 },
        })
    }

    /// The body as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).expect("JSON values serialize")
    }
}
