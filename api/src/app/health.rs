//! Operability: `/healthz` (the process answers), `/readyz` (what it
//! depends on answers: the node, the index within a bound of it, the
//! database, the object store) and `/metrics` (Prometheus text format:
//! requests by route and status with latency histograms, set as they are
//! answered; the audit log, its anchoring lag, the index's lag behind the
//! node and the backups' alerts, read when scraped).
//!
//! `/metrics` tells how the node is used, not what it holds: it is served
//! to a scraper presenting the configured token (`up` reads it from
//! `MEDANCHOR_METRICS_TOKEN`; only its SHA-256 is kept) as a bearer token,
//! or, without one, to loopback clients only.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;

use super::AppState;
use crate::error::{ApiError, ApiResult};

/// The index may trail the node by this many blocks and still be ready.
pub const READY_LAG_BLOCKS: u64 = 30;

/// How long a readiness or metrics probe waits for the node.
const NODE_PROBE: Duration = Duration::from_secs(2);

/// The environment variable `up` reads the scraper's bearer token from.
pub const METRICS_TOKEN_VAR: &str = "MEDANCHOR_METRICS_TOKEN";

/// Request latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The process's metrics recorder (one per process: tenants and test
/// systems share it).
pub(crate) fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("medanchor_http_request_duration_seconds".into()), &LATENCY_BUCKETS)
            .expect("buckets are not empty");
        // Another recorder installed first (a host process): ours still
        // renders what is recorded through it.
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts one answered request (`request_context` calls it for every
/// request, with the route template, never the path: ids stay out).
pub(crate) fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    recorder();
    let labels = [("method", method.to_string()), ("route", route.to_string()), ("status", status.to_string())];
    metrics::counter!("medanchor_http_requests_total", &labels).increment(1);
    let labels = [("method", method.to_string()), ("route", route.to_string())];
    metrics::histogram!("medanchor_http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    summary = "The process answers",
    responses((status = 200, description = "Up", body = String, content_type = "text/plain"))
)]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// One readiness check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Check {
    /// `node`, `index`, `database`, `objects`.
    name: &'static str,
    /// Whether it passed.
    ok: bool,
    /// What was seen.
    detail: String,
}

/// The readiness answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    /// Every check passed.
    ready: bool,
    /// Each check.
    checks: Vec<Check>,
}

/// `GET /readyz`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "meta",
    summary = "Ready to serve: the node, the index, the database and the object store answer",
    description = "The node's RPC answers within 2 s; the index trails the node's tip by at most 30 blocks; the database reads; the object store (when attachments are on one) answers. Each check is listed with what it saw.",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: `detail` names each failing check and what it saw", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    let mut checks = Vec::new();
    let node = tokio::time::timeout(NODE_PROBE, s.node().info()).await;
    let node_tip = match node {
        Ok(Ok(info)) => {
            checks.push(Check { name: "node", ok: true, detail: format!("tip {}", info.stacks_tip_height) });
            Some(info.stacks_tip_height)
        }
        Ok(Err(e)) => {
            checks.push(Check { name: "node", ok: false, detail: e.to_string() });
            None
        }
        Err(_) => {
            checks.push(Check { name: "node", ok: false, detail: "no answer within 2 s".into() });
            None
        }
    };
    match s.chain().status() {
        Ok(status) => {
            let index = status.tip_height.unwrap_or(0);
            let lag = node_tip.map(|n| n.saturating_sub(index));
            let ok = lag.is_some_and(|l| l <= READY_LAG_BLOCKS);
            let detail = match lag {
                Some(l) => format!("tip {index}, {l} blocks behind the node (at most {READY_LAG_BLOCKS})"),
                None => format!("tip {index}; the node's tip unknown"),
            };
            checks.push(Check { name: "index", ok, detail });
        }
        Err(e) => checks.push(Check { name: "index", ok: false, detail: e.to_string() }),
    }
    match s.audit().size() {
        Ok(n) => checks.push(Check { name: "database", ok: true, detail: format!("audit log of {n} entries") }),
        Err(e) => checks.push(Check { name: "database", ok: false, detail: e.to_string() }),
    }
    if let Some(store) = s.object_store() {
        let probe = tokio::time::timeout(NODE_PROBE, store.size_raw("readyz-probe")).await;
        let (ok, detail) = match probe {
            Ok(Ok(_)) => (true, store.describe().to_string()),
            Ok(Err(e)) => (false, e.to_string()),
            Err(_) => (false, "no answer within 2 s".into()),
        };
        checks.push(Check { name: "objects", ok, detail });
    }
    let failed: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.name, c.detail)).collect();
    if failed.is_empty() {
        (StatusCode::OK, Json(Readiness { ready: true, checks })).into_response()
    } else {
        ApiError(medanchor_service::Error::Unavailable(format!("not ready: {}", failed.join("; ")))).into_response()
    }
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    summary = "Prometheus metrics (a scraper's token, or loopback)",
    description = "Prometheus text format 0.0.4: `medanchor_http_requests_total` and `medanchor_http_request_duration_seconds` by method, route template and status; `medanchor_audit_entries`, `medanchor_audit_anchored_entries`, `medanchor_audit_anchor_lag_entries`; `medanchor_index_tip_height`, `medanchor_node_tip_height`, `medanchor_index_lag_blocks`, `medanchor_node_up`; `medanchor_backup_alerts`; `medanchor_open_flags` by kind (`anomaly`, `security`: flags of the last 7 days not acknowledged); `medanchor_outbox_depth` and `medanchor_outbox_given_up` by channel (`webhook`, `email`); `medanchor_share_lockouts_today`; per job `medanchor_job_runs`, `medanchor_job_failures`, `medanchor_job_failing` (failed runs since the last success) and `medanchor_job_last_run_timestamp_seconds`. Served to a bearer token equal to the node's `MEDANCHOR_METRICS_TOKEN`, or, when that is not set, to loopback clients only.",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "A token is configured and this is not it", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "No token is configured and the client is not on loopback", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn metrics(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    scraper_allowed(s.config().metrics_token_sha256.as_ref(), &headers, peer)?;
    let audit = s.audit().size().map_err(ApiError::internal)?;
    metrics::gauge!("medanchor_audit_entries").set(audit as f64);
    let anchored = medanchor_service::anchoring::anchor_record(s.db())
        .ok()
        .flatten()
        .and_then(|r| r.head)
        .map_or(0, |h| h.tree_size);
    metrics::gauge!("medanchor_audit_anchored_entries").set(anchored as f64);
    metrics::gauge!("medanchor_audit_anchor_lag_entries").set(audit.saturating_sub(anchored) as f64);
    let index = s.chain().status().map_err(ApiError::internal)?.tip_height.unwrap_or(0);
    metrics::gauge!("medanchor_index_tip_height").set(index as f64);
    match tokio::time::timeout(NODE_PROBE, s.node().info()).await {
        Ok(Ok(info)) => {
            metrics::gauge!("medanchor_node_up").set(1.0);
            metrics::gauge!("medanchor_node_tip_height").set(info.stacks_tip_height as f64);
            metrics::gauge!("medanchor_index_lag_blocks").set(info.stacks_tip_height.saturating_sub(index) as f64);
        }
        _ => metrics::gauge!("medanchor_node_up").set(0.0),
    }
    let alerts = medanchor_service::backups::outcomes(&s).map_or(0, |o| o.alerts().len());
    metrics::gauge!("medanchor_backup_alerts").set(alerts as f64);
    let (anomalies, security) = medanchor_service::analytics::open_flags(s.db()).map_err(ApiError::internal)?;
    metrics::gauge!("medanchor_open_flags", "kind" => "anomaly").set(anomalies as f64);
    metrics::gauge!("medanchor_open_flags", "kind" => "security").set(security as f64);
    let (hooks, hooks_dead, mail, mail_dead) = s.outbox_gauges().map_err(ApiError::internal)?;
    for (channel, waiting, dead) in [("webhook", hooks, hooks_dead), ("email", mail, mail_dead)] {
        metrics::gauge!("medanchor_outbox_depth", "channel" => channel).set(waiting as f64);
        metrics::gauge!("medanchor_outbox_given_up", "channel" => channel).set(dead as f64);
    }
    let lockouts = medanchor_service::analytics::today_count(s.db(), "shares.lockouts").map_err(ApiError::internal)?;
    metrics::gauge!("medanchor_share_lockouts_today").set(lockouts as f64);
    for job in s.job_status().map_err(ApiError::internal)? {
        metrics::gauge!("medanchor_job_runs", "job" => job.name.clone()).set(job.runs as f64);
        metrics::gauge!("medanchor_job_failures", "job" => job.name.clone()).set(job.failures as f64);
        metrics::gauge!("medanchor_job_failing", "job" => job.name.clone()).set(job.failing as f64);
        let last = job.last_end_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        metrics::gauge!("medanchor_job_last_run_timestamp_seconds", "job" => job.name).set(last);
    }
    let handle = recorder();
    handle.run_upkeep();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response())
}

fn scraper_allowed(token_sha256: Option<&[u8; 32]>, headers: &HeaderMap, peer: SocketAddr) -> ApiResult<()> {
    use sha2::Digest;
    match token_sha256 {
        Some(want) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            let got: [u8; 32] = sha2::Sha256::digest(presented.as_bytes()).into();
            let same: bool = subtle::ConstantTimeEq::ct_eq(&got[..], &want[..]).into();
            if same {
                Ok(())
            } else {
                Err(ApiError(medanchor_service::Error::Unauthorized("the metrics token is not this".into())))
            }
        }
        None if peer.ip().is_loopback() => Ok(()),
        None => Err(ApiError(medanchor_service::Error::Forbidden {
            code: "metrics-loopback-only",
            detail: format!("set {METRICS_TOKEN_VAR} to let scrapers off loopback read the metrics"),
            reason: None,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn the_scraper_needs_the_token_or_loopback() {
        let token: [u8; 32] = sha2::Sha256::digest(b"scrape-me").into();
        let bearer = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, format!("Bearer {t}").parse().expect("header"));
            h
        };
        let (local, remote): (SocketAddr, SocketAddr) =
            ("127.0.0.1:9".parse().expect("addr"), "10.1.2.3:9".parse().expect("addr"));
        // (token configured, headers, client, refusal status)
        type Case<'a> = (Option<&'a [u8; 32]>, HeaderMap, SocketAddr, Option<u16>);
        let cases: [Case; 6] = [
            (None, HeaderMap::new(), local, None),
            (None, HeaderMap::new(), remote, Some(403)),
            (None, bearer("scrape-me"), remote, Some(403)),
            (Some(&token), bearer("scrape-me"), remote, None),
            (Some(&token), bearer("scrape-me!"), local, Some(401)),
            (Some(&token), HeaderMap::new(), local, Some(401)),
        ];
        for (i, (token, headers, peer, want)) in cases.into_iter().enumerate() {
            let got = scraper_allowed(token, &headers, peer).err().map(|e| e.into_response().status().as_u16());
            assert_eq!(got, want, "case {i}");
        }
    }
}
