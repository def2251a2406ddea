//! Auditors' and admins' evidence pages: a record verified against the
//! chain step by step, and the audit log with an inclusion proof for each
//! entry against the root anchored on the chain.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use maud::{html, Markup};
use medanchor_service::evidence::StoredState;
use medanchor_service::merkle::{leaf_hash, verify_inclusion};

use crate::error::PortalError;
use crate::session::Session;
use crate::view::{self, badge, empty, Page};

const ROLES: &[&str] = &["auditor", "admin"];

fn step(n: u8, title: &str, ok: Option<bool>, detail: Markup) -> Markup {
    let (text, kind) = match ok {
        Some(true) => ("checked", "ok"),
        Some(false) => ("failed", "bad"),
        None => ("not yet", "warn"),
    };
    html! {
        li.step {
            h3 { "Step " (n) ": " (title) " " (badge(text, kind)) }
            (detail)
        }
    }
}

/// Verifies a record: the stored ciphertext hashed again, the version on
/// the chain, the transaction and block, the audit entry and its proof.
pub async fn verify(session: Session, Query(q): Query<HashMap<String, String>>) -> Result<Markup, PortalError> {
    let who = session.require_role(ROLES)?.clone();
    let record = q.get("record").map(|s| s.trim().to_string()).unwrap_or_default();
    let mut result = None;
    if !record.is_empty() {
        let id = super::records::record_arg(&record)?;
        let s = session.service.clone();
        let meta = s.current(&id).map_err(|_| PortalError::NotFound("record".into()))?;
        let (s2, m2) = (s.clone(), meta.clone());
        let evidence =
            tokio::task::spawn_blocking(move || s2.record_evidence(&m2)).await.map_err(PortalError::internal)??;
        let tampered = evidence.tampered(&meta);
        let medanchor_service::evidence::RecordEvidence { blob, onchain, anchors } = evidence;
        // Missing or unreadable: not yet known (the blob store may be
        // catching up, or down); altered: failed.
        let hash_ok = match blob.state {
            StoredState::Present => Some(true),
            StoredState::Corrupt => Some(false),
            StoredState::Missing | StoredState::Unreadable => None,
        };
        // Attached files: their ids and ciphertext hashes only (what the
        // chain's batch anchors hold), never names or content.
        let files: Vec<(String, String)> = s
            .db()
            .attachments(&id.0)
            .map_err(PortalError::internal)?
            .into_iter()
            .filter(|a| a.removed.is_none())
            .map(|a| (a.attachment_id, hex::encode(a.sha256.0)))
            .collect();
        // The audit entry that wrote this version, and its proof against
        // the latest root anchored on the chain.
        let anchored = medanchor_service::anchoring::anchor_record(s.db()).ok().flatten().and_then(|r| r.head);
        let size = s.audit().size().map_err(PortalError::internal)?;
        let bare = id.bare_hex();
        let mut written = None;
        let from = size.saturating_sub(5000);
        for i in (from..size).rev() {
            if let Ok(Some(e)) = s.audit().entry(i) {
                if e.record_id.as_deref() == Some(bare.as_str())
                    && e.action == "record.create"
                    && e.outcome == "allowed"
                {
                    written = Some((i, e));
                    break;
                }
            }
        }
        let proof = match (&written, &anchored) {
            (Some((i, e)), Some(head)) if *i < head.tree_size => {
                let leaf = leaf_hash(&e.leaf());
                let path = s.audit().inclusion_proof(*i, head.tree_size).map_err(PortalError::internal)?;
                let root = head.root_bytes();
                let ok = root.is_some_and(|r| verify_inclusion(&leaf, *i, head.tree_size, &path, &r).is_ok());
                Some((ok, *i, head.tree_size, head.root.clone(), path.iter().map(hex::encode).collect::<Vec<_>>()))
            }
            _ => None,
        };
        let mut entry = session.caller.entry(session.role, "verify.record");
        entry.patient = Some(meta.patient.clone());
        entry.record_id = Some(bare.clone());
        entry.version = Some(meta.version);
        if tampered {
            entry.outcome = "error".into();
            entry.reason = Some("integrity-failure".into());
        }
        s.audit().append(entry).await.map_err(PortalError::internal)?;
        let _ = &who;
        result = Some(html! {
            ol.steps {
                (step(1, "Hash the stored ciphertext", hash_ok, html! {
                    p { "SHA-256 of the encrypted blob this node stores for version " (meta.version) ":" }
                    p { code.wrap { @match (&blob.sha256, blob.state) {
                        (Some(sha), _) => { (sha) },
                        (None, StoredState::Missing) => { "the blob is missing" },
                        (None, StoredState::Unreadable) => { "the blob store could not be read" },
                        (None, _) => { (blob.detail.as_deref().unwrap_or("altered in storage")) },
                    } } }
                    p { "The hash the node recorded: " code.wrap { (meta.data_hash) } }
                }))
                (step(2, "Find the version on the chain", onchain.as_ref().map(|v| v.data_hash == meta.data_hash), html! {
                    @match &onchain {
                        Some(v) => { p { "record-management holds version " (v.version) " with hash " code.wrap { (v.data_hash) } } }
                        None => { p { "Not on the chain yet (anchoring in progress)." } }
                    }
                }))
                (step(3, "The transaction and its block", (!anchors.is_empty()).then_some(true), html! {
                    @if anchors.is_empty() { p { "No anchoring transaction indexed yet." } }
                    ul { @for a in &anchors { li { "tx " code.wrap { (a.txid) } " in block " (a.block_height) } } }
                }))
                (step(4, "The audit entry and its inclusion proof", proof.as_ref().map(|p| p.0), html! {
                    @match &proof {
                        Some((_, index, tree, root, path)) => {
                            p { "Entry " a href=(format!("/audit/log/{index}")) { "#" (index) } " (record.create) is leaf " (index) " of the " (tree) "-entry log whose root " code.wrap { (root) } " is anchored on the chain." }
                            details { summary { "Proof path (" (path.len()) " hashes)" } ol.mono { @for h in path { li { code.wrap { (h) } } } } }
                        }
                        None => { p { "The audit log's root covering this entry is not anchored yet; it is anchored every few seconds." } }
                    }
                }))
            }
            @if !files.is_empty() {
                h3 { "Attached files" }
                ul { @for (file, sha) in &files { li { "File " code { (file.get(..8).unwrap_or(file)) "…" } ": " a href=(format!("/audit/verify?sha256={sha}")) { "verify its anchor" } } } }
            }
            p.small { "To check without trusting this node: " code { "medanchor verify record " (bare) " --node <a node you trust>" } }
        });
    }
    let file = q.get("sha256").map(|s| s.trim().trim_start_matches("0x").to_ascii_lowercase()).unwrap_or_default();
    let file_result = if file.is_empty() { None } else { Some(verify_file(&session, &file).await?) };
    let body = html! {
        form.filters method="get" action="/audit/verify" {
            div.field { label for="v-record" { "Record id (32 hex digits)" } input #v-record name="record" value=(record) required; }
            button type="submit" { "Verify" }
        }
        @if let Some(r) = result { section.card aria-labelledby="res-h" { h2 #res-h { "Evidence" } (r) } }
        form.filters method="get" action="/audit/verify" {
            div.field {
                label for="v-sha" { "Or an attached file: the SHA-256 of its stored ciphertext" }
                p.hint #v-sha-hint { "A record's page lists each attachment's; " code { "medanchor verify" } " computes it from the stored object." }
                input #v-sha name="sha256" value=(file) required pattern="(0x)?[0-9a-fA-F]{64}" aria-describedby="v-sha-hint";
            }
            button type="submit" { "Verify file" }
        }
        @if let Some(r) = file_result { section.card aria-labelledby="file-h" { h2 #file-h { "File evidence" } (r) } }
    };
    let help = html! {
        p { "Verification rebuilds the evidence step by step: the stored ciphertext hashed again, the same hash in the record-management contract, the transaction and block that wrote it, and the audit entry proven to be inside a log root that is itself anchored on the chain." }
        p { "This page is the node's own view; the command shown at the end checks the same against a node you choose." }
    };
    Ok(view::render(&session, Page { title: "Verify a record", current: "/audit/verify", help, body }, None))
}

/// A file's evidence: the batch its hash is in, the inclusion proof, and
/// the batch root anchored on the chain. Hashes only: nothing of the file
/// is stored or shown (anyone may check a hash, as `/v1/verify/hash` lets).
async fn verify_file(session: &Session, sha: &str) -> Result<Markup, PortalError> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(sha, &mut hash).map_err(|_| PortalError::Invalid("A SHA-256 is 64 hex digits.".into()))?;
    let s = session.service.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<_, PortalError> {
        let anchor = s.file_anchor(&hash)?;
        let batch = match &anchor {
            Some(medanchor_service::file_anchors::FileAnchor::Batched(p)) => {
                s.chain().batch(&p.root).map_err(PortalError::internal)?
            }
            _ => None,
        };
        Ok((anchor, batch))
    })
    .await
    .map_err(PortalError::internal)??;
    use medanchor_service::file_anchors::FileAnchor;
    Ok(match found {
        (None, _) => {
            html! { (step(1, "Find the file's hash", Some(false), html! { p { "This node anchored no file with that hash. A changed file has another hash." } })) }
        }
        (Some(FileAnchor::Queued), _) => {
            html! { (step(1, "Find the file's hash", None, html! { p { "Known, and waiting for its batch (batches are sealed every second)." } })) }
        }
        (Some(FileAnchor::Batched(p)), batch) => {
            let ok = verify_inclusion(&leaf_hash(&p.sha256), p.leaf_index, p.tree_size, &p.path, &p.root).is_ok();
            html! {
                ol.steps {
                    (step(1, "Find the file's hash", Some(true), html! { p { "Leaf " (p.leaf_index) " of a batch of " (p.tree_size) " files." } }))
                    (step(2, "Prove it is in the batch", Some(ok), html! {
                        p { "Batch root " code.wrap { (hex::encode(p.root)) } }
                        details { summary { "Proof path (" (p.path.len()) " hashes)" } ol.mono { @for h in &p.path { li { code.wrap { (hex::encode(h)) } } } } }
                    }))
                    (step(3, "The batch root on the chain", batch.as_ref().map(|b| b.root.trim_start_matches("0x") == hex::encode(p.root)), html! {
                        @match &batch {
                            Some(b) => { p { "anchor-batch in tx " code.wrap { (b.txid) } ", block " (b.block_height) ", by " code { (view::short(&b.submitter)) } } }
                            None => { p { "Not on the chain yet." } }
                        }
                    }))
                }
            }
        }
    })
}

/// The audit log, newest first, a page at a time.
pub async fn log(session: Session, Query(q): Query<HashMap<String, String>>) -> Result<Markup, PortalError> {
    session.require_role(ROLES)?;
    let size = session.service.audit().size().map_err(PortalError::internal)?;
    let per = 50u64;
    let before: u64 = q.get("before").and_then(|b| b.parse().ok()).unwrap_or(size).min(size);
    let from = before.saturating_sub(per);
    let action = q.get("action").map(|a| a.trim().to_string()).unwrap_or_default();
    let (entries, _) = session.service.audit_entries(&session.caller, from, before - from)?;
    let rows: Vec<_> =
        entries.iter().rev().filter(|(_, e)| action.is_empty() || e.action.starts_with(&action)).collect();
    let body = html! {
        form.filters method="get" action="/audit/log" {
            div.field { label for="l-action" { "Action starts with" } input #l-action name="action" value=(action); }
            button type="submit" { "Filter" }
        }
        p { (size) " entries in the log." }
        @if rows.is_empty() { (empty("No entries here.", None)) } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Role" } th scope="col" { "Action" } th scope="col" { "Outcome" } } }
                tbody { @for (i, e) in &rows { tr {
                    td { a href=(format!("/audit/log/{i}")) { (i) } }
                    td { (view::when(e.time_ms)) }
                    td { code { (view::short(&e.actor)) } }
                    td { (e.role) }
                    td { (e.action) }
                    td { (badge(&e.outcome, if e.outcome == "allowed" { "ok" } else { "bad" })) }
                } } }
            } }
        }
        @if from > 0 { p { a href=(format!("/audit/log?before={from}&action={}", super::urlencode(&action))) { "Older entries" } } }
    };
    let help = html! { p { "Every access, refusal and change is an entry in an append-only Merkle log; its root is signed and anchored on the chain, so an entry cannot be changed or removed without the proof failing. Open an entry to see its proof." } };
    Ok(view::render(&session, Page { title: "Audit log", current: "/audit/log", help, body }, None))
}

/// One entry with its inclusion proof (against the anchored root when it
/// covers the entry, else the current one).
pub async fn entry(session: Session, Path(index): Path<u64>) -> Result<Markup, PortalError> {
    session.require_role(ROLES)?;
    let s = &session.service;
    let (entries, size) = s.audit_entries(&session.caller, index, 1)?;
    let (_, e) = entries.into_iter().next().ok_or_else(|| PortalError::NotFound("entry".into()))?;
    let anchored = medanchor_service::anchoring::anchor_record(s.db())
        .ok()
        .flatten()
        .and_then(|r| r.head)
        .filter(|h| index < h.tree_size);
    let (tree, root, on_chain) = match &anchored {
        Some(h) => (h.tree_size, h.root_bytes(), true),
        None => (size, s.audit().root(size).ok(), false),
    };
    let leaf = leaf_hash(&e.leaf());
    let path = s.audit().inclusion_proof(index, tree).map_err(PortalError::internal)?;
    let ok = root.is_some_and(|r| verify_inclusion(&leaf, index, tree, &path, &r).is_ok());
    let body = html! {
        dl.meta {
            dt { "When" } dd { (view::when(e.time_ms)) }
            dt { "Who" } dd { code.wrap { (e.actor) } " (" (e.role) ")" }
            dt { "Action" } dd { (e.action) }
            dt { "Outcome" } dd { (e.outcome) @if let Some(r) = &e.reason { " — " (r) } }
            @if let Some(p) = &e.patient { dt { "Patient" } dd { code.wrap { (p) } } }
            @if let Some(r) = &e.record_id { dt { "Record" } dd { code.wrap { (r) } } }
            dt { "Request" } dd { code { (e.request_id) } }
        }
        section.card aria-labelledby="proof-h" {
            h2 #proof-h { "Inclusion proof " (badge(if ok { "valid" } else { "invalid" }, if ok { "ok" } else { "bad" })) }
            p { "Leaf hash " code.wrap { (hex::encode(leaf)) } }
            p { "Leaf " (index) " of a tree of " (tree) " entries with root " code.wrap { (root.map(hex::encode).unwrap_or_default()) }
                @if on_chain { " — " (badge("anchored on the chain", "ok")) } @else { " — " (badge("not anchored yet", "warn")) } }
            ol.mono { @for h in &path { li { code.wrap { (hex::encode(h)) } } } }
        }
    };
    let help = html! { p { "The proof hashes the entry up to the root (RFC 9162). A root anchored on the chain cannot be rewritten; this entry is in it if the proof is valid." } };
    Ok(view::render(
        &session,
        Page { title: &format!("Audit entry #{index}"), current: "/audit/log", help, body },
        None,
    ))
}
