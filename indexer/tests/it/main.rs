//! Indexer tests.

mod consent;
mod fixtures;
mod http;
mod linkage;
mod live;
mod scenarios;
mod support;
