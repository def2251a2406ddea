//! Indexer tests.
