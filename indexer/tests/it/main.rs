//! Indexer tests.

mod consent;
mod fixtures;
mod http;
mod live;
mod scenarios;
mod support;
