//! The wallet's integration tests: the wallet against an in-process devnet
//! node over loopback (`medanchor-devnet` is a dev-dependency only).

mod node;
