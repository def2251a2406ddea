//! Indexer tests.
mod live;
