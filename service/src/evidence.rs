//! The evidence behind a record version, as this node sees it: the stored
//! ciphertext hashed again, the version the chain holds and the
//! transactions that anchored its hash. One place for every front end
//! that shows it (the API's trust-us `/v1/verify/record`, the portal's
//! step-by-step page); what it proves, and how to check it without
//! trusting the node, is theirs to say.

use medanchor_contracts::DataHash;
use medanchor_indexer::query::{AnchorView, VersionView};
use sha2::{Digest, Sha256};

use crate::blob::BlobError;
use crate::db::RecordMeta;
use crate::error::{Error, Result};
use crate::state::Service;

/// What the stored ciphertext looks like when read and hashed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredState {
    /// Present and hashing to its address.
    Present,
    /// Not in the store.
    Missing,
    /// Present, but its bytes do not hash to the anchored hash.
    Corrupt,
    /// The store could not be read.
    Unreadable,
}

/// The stored ciphertext, hashed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// What was found.
    pub state: StoredState,
    /// SHA-256 of the stored bytes, when they could be read.
    pub sha256: Option<DataHash>,
    /// Bytes, when read.
    pub size: Option<u64>,
    /// Why it is corrupt, when the store itself said so.
    pub detail: Option<String>,
}

impl StoredBlob {
    /// Whether the stored bytes hash to the anchored hash.
    pub fn matches(&self) -> bool {
        self.state == StoredState::Present
    }
}

/// A version's evidence.
#[derive(Debug, Clone)]
pub struct RecordEvidence {
    /// The stored ciphertext.
    pub blob: StoredBlob,
    /// The version as the chain holds it (the index's view), if anchored.
    pub onchain: Option<VersionView>,
    /// Every anchoring of its hash.
    pub anchors: Vec<AnchorView>,
}

impl RecordEvidence {
    /// Whether stored data disagrees with its anchor: bytes altered at
    /// rest, or a chain version with another hash (an integrity failure,
    /// which raises the tampering alert).
    pub fn tampered(&self, meta: &RecordMeta) -> bool {
        self.blob.state == StoredState::Corrupt
            || (self.blob.state == StoredState::Present
                && self.onchain.as_ref().is_some_and(|v| v.data_hash != meta.data_hash))
    }
}

impl Service {
    /// The ciphertext stored under `hash`, read and hashed again
    /// (blocking: call off the async threads).
    pub fn stored_blob(&self, hash: &DataHash) -> StoredBlob {
        let absent = |state| StoredBlob { state, sha256: None, size: None, detail: None };
        match self.blobs().get(hash) {
            Ok(Some(bytes)) => {
                let sha = DataHash(Sha256::digest(&bytes).into());
                StoredBlob {
                    state: if sha == *hash { StoredState::Present } else { StoredState::Corrupt },
                    sha256: Some(sha),
                    size: Some(bytes.len() as u64),
                    detail: None,
                }
            }
            Ok(None) => absent(StoredState::Missing),
            Err(BlobError::Corrupt(_)) => StoredBlob {
                detail: Some("the stored bytes do not hash to the anchored hash (altered in storage)".into()),
                ..absent(StoredState::Corrupt)
            },
            Err(e) => {
                tracing::error!(error = %e, "reading a blob to verify it");
                absent(StoredState::Unreadable)
            }
        }
    }

    /// The evidence behind the version `meta` names (blocking: call off
    /// the async threads). Reveals hashes and chain facts only.
    pub fn record_evidence(&self, meta: &RecordMeta) -> Result<RecordEvidence> {
        let blob = self.stored_blob(&meta.data_hash);
        let onchain = self
            .chain()
            .versions(&meta.record_id)
            .map_err(Error::internal)?
            .into_iter()
            .find(|v| v.version == meta.version);
        let anchors = self.chain().anchors(&meta.data_hash).map_err(Error::internal)?;
        Ok(RecordEvidence { blob, onchain, anchors })
    }
}
