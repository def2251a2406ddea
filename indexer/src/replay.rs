//! Replaying a recorded event stream: Hiro's event-log TSV (`id`,
//! `receive_timestamp`, `event_path`, `payload_json`, tab-separated; the
//! format of the API's `event_observer_requests` export and of the
//! fixtures), fed through the same ingestion as live delivery.

use std::io::BufRead;
use std::path::Path;

use serde::Serialize;

use crate::{Error, Indexer, Outcome, Result};

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReplayStats {
    /// Lines read.
    pub lines: usize,
    /// `/new_block` payloads applied (including ones connected later).
    pub blocks_applied: usize,
    /// Blocks already known.
    pub duplicates: usize,
    /// Blocks buffered for want of a parent (and never connected).
    pub buffered: usize,
    /// `/new_burn_block` payloads.
    pub burn_blocks: usize,
    /// Other paths (mempool, microblocks), which carry no state.
    pub ignored: usize,
    /// Re-orgs followed.
    pub reorgs: usize,
}

/// Replays the TSV at `path` into `indexer`.
pub fn replay_tsv(indexer: &Indexer, path: &Path) -> Result<ReplayStats> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Replay { path: path.display().to_string(), message: e.to_string() })?;
    replay_reader(indexer, std::io::BufReader::new(file), &path.display().to_string())
}

/// Replays TSV lines from `reader`; `origin` names it in errors.
pub fn replay_reader(indexer: &Indexer, reader: impl BufRead, origin: &str) -> Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    for (n, line) in reader.lines().enumerate() {
        let at =
            |message: String| Error::Replay { path: origin.to_string(), message: format!("line {}: {message}", n + 1) };
        let line = line.map_err(|e| at(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        stats.lines += 1;
        let mut cols = line.splitn(4, '\t');
        let (_id, _ts, path, body) = match (cols.next(), cols.next(), cols.next(), cols.next()) {
            (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
            _ => return Err(at("expected 4 tab-separated columns: id, timestamp, path, json".into())),
        };
        match path {
            "/new_block" => match indexer.ingest_json(body.as_bytes()).map_err(|e| at(e.to_string()))? {
                Outcome::Applied { reorg_depth, connected, .. } => {
                    stats.blocks_applied += 1 + connected;
                    stats.buffered = stats.buffered.saturating_sub(connected);
                    stats.reorgs += usize::from(reorg_depth > 0);
                }
                Outcome::Duplicate => stats.duplicates += 1,
                Outcome::Buffered => stats.buffered += 1,
            },
            "/new_burn_block" => {
                indexer.ingest_burn_block(body.as_bytes()).map_err(|e| at(e.to_string()))?;
                stats.burn_blocks += 1;
            }
            _ => stats.ignored += 1,
        }
    }
    Ok(stats)
}
