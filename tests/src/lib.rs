//! End-to-end tests of the whole system over real HTTP on loopback: a
//! devnet node, the indexer fed by its event stream and the API, all real,
//! in one process (`tests/e2e`). Process-level tests of the `medanchor`
//! binary (`up`, `verify`, `demo`, crash tests) live in `medanchor/tests/it`;
//! each crate's own integration tests in its `tests/it`.
