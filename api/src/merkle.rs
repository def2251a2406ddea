//! RFC 6962 / RFC 9162 Merkle trees (being written).
