//! End-to-end tests of the `medanchor` binary: real processes, real HTTP
//! on loopback.

mod anchor_load;
mod backup;
mod config;
mod datadir_v1;
mod demo;
mod devnet_process;
mod export;
mod indexer_process;
mod keys;
mod lifecycle;
mod notify;
mod portal;
mod share_js;
mod tenants;
mod up_index;
mod upgrade;
mod upload_crash;
mod verify;
mod wallet;
