//! One scheduler for the node's periodic jobs: share sweeps, credential
//! expiry, the attachments' housekeeping, reminders of consents about to
//! end, and what the command adds (backups). The rules are [`medanchor_ops::schedule`]; here they meet
//! the store and the clock.
//!
//! Each job's record (`meta` `job/{name}`: last start, end, outcome,
//! counts, lease) is read and replaced under the database's job lock, a
//! compare-and-set, so two schedulers over one store — two nodes, or a
//! test's two — never both take a run: the one that takes it holds a
//! lease until it ends or lapses. The clock is the service's, so a test
//! moves time forward instead of sleeping through it. A new job waits one
//! period after a scheduler first sees it; a job that fell due while the
//! node was down runs once at the first tick after start. Every
//! run is recorded; a failure is logged as an error and stays an alert
//! (`failing`, `GET /v1/admin/jobs`, the `medanchor_job_failing` gauge)
//! until a run of that job succeeds.
//!
//! Jobs run every second (deliveries, file anchoring) or every few (audit
//! anchoring) as well as hourly ones: a job record is written only when a
//! run is taken and when it ends. The anchor tracker (every 500 ms, each
//! pass idempotent) is the one loop outside it.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use medanchor_ops::schedule::JobSpec;
use medanchor_ops::schedule::JobState;
use serde::Serialize;

use crate::db::{ApiDb, Cf, DbError};
use crate::error::{Error, Result};
use crate::state::{Caller, Clock, Service};

/// A run of a job: what it did (`Ok`) or why it failed, in a line with no
/// secrets and no PHI.
pub type JobFuture = Pin<Box<dyn Future<Output = std::result::Result<String, String>> + Send>>;

/// Starts a run.
pub type JobFn = Arc<dyn Fn() -> JobFuture + Send + Sync>;

const JOB: &[u8] = b"job/";

fn job_key(name: &str) -> Vec<u8> {
    [JOB, name.as_bytes()].concat()
}

fn state_of(db: &ApiDb, name: &str) -> std::result::Result<JobState, DbError> {
    Ok(match db.get(Cf::Meta, &job_key(name))? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| DbError::Corrupt(e.to_string()))?,
        None => JobState::default(),
    })
}

/// Applies `change` to job `name`'s record under the job lock; the new
/// record when `change` made one.
fn swap(
    db: &ApiDb,
    name: &str,
    change: impl FnOnce(&JobState) -> Option<JobState>,
) -> std::result::Result<Option<JobState>, DbError> {
    let _cas = db.job_lock();
    let Some(next) = change(&state_of(db, name)?) else { return Ok(None) };
    let mut batch = db.batch();
    let bytes = serde_json::to_vec(&next).map_err(|e| DbError::Corrupt(e.to_string()))?;
    batch.put_cf(db.cf(Cf::Meta), job_key(name), bytes);
    db.write(batch)?;
    Ok(Some(next))
}

/// The node's periodic jobs over one store.
pub struct Scheduler {
    db: Arc<ApiDb>,
    clock: Clock,
    holder: String,
    jobs: Vec<(JobSpec, JobFn)>,
    running: Mutex<HashSet<&'static str>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.jobs.iter().map(|(s, _)| s.name).collect();
        f.debug_struct("Scheduler").field("holder", &self.holder).field("jobs", &names).finish()
    }
}

impl Scheduler {
    /// A scheduler named `holder` (unique per process: leases name it).
    pub fn new(db: Arc<ApiDb>, clock: Clock, holder: &str) -> Scheduler {
        Scheduler { db, clock, holder: holder.into(), jobs: Vec::new(), running: Mutex::default() }
    }

    /// Adds a job.
    pub fn add(&mut self, spec: JobSpec, run: JobFn) {
        self.jobs.push((spec, run));
    }

    /// The jobs, in the order added.
    pub fn specs(&self) -> Vec<JobSpec> {
        self.jobs.iter().map(|(s, _)| *s).collect()
    }

    /// Runs every job that is due and not held elsewhere, each to its end
    /// (concurrently); returns the names and outcomes of the runs made.
    pub async fn tick(&self) -> Vec<(&'static str, std::result::Result<String, String>)> {
        let now = (self.clock)();
        let mut runs = Vec::new();
        for (spec, run) in &self.jobs {
            // Still running here (a run longer than its lease): not again.
            if !self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(spec.name) {
                continue;
            }
            let (db, holder, spec2) = (self.db.clone(), self.holder.clone(), *spec);
            let taken = tokio::task::spawn_blocking(move || {
                swap(&db, spec2.name, |s| s.register(now))?;
                swap(&db, spec2.name, |s| s.take(&spec2, &holder, now))
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
            match taken {
                Ok(Some(_)) => runs.push((*spec, run.clone())),
                Ok(None) => {
                    self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(spec.name);
                }
                Err(e) => {
                    self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(spec.name);
                    tracing::error!(job = spec.name, error = %e, "the scheduler could not read its jobs");
                }
            }
        }
        let outcomes = futures::future::join_all(runs.into_iter().map(|(spec, run)| async move {
            let outcome = run().await;
            (spec, outcome)
        }))
        .await;
        let mut done = Vec::with_capacity(outcomes.len());
        for (spec, outcome) in outcomes {
            let (db, holder, end, o) = (self.db.clone(), self.holder.clone(), (self.clock)(), outcome.clone());
            let recorded =
                tokio::task::spawn_blocking(move || swap(&db, spec.name, |s| s.finish(&holder, end, o))).await;
            match (&outcome, recorded) {
                (_, Ok(Ok(None))) => {
                    tracing::warn!(job = spec.name, "a run outlived its lease; another node's record stands")
                }
                (Ok(detail), Ok(Ok(Some(_)))) => tracing::info!(job = spec.name, %detail, "job done"),
                (Err(detail), Ok(Ok(Some(s)))) => {
                    tracing::error!(job = spec.name, %detail, failing = s.failing, "JOB FAILED")
                }
                (_, Ok(Err(e))) => tracing::error!(job = spec.name, error = %e, "recording a job run"),
                (_, Err(e)) => tracing::error!(job = spec.name, error = %e, "recording a job run"),
            }
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(spec.name);
            done.push((spec.name, outcome));
        }
        done
    }

    /// Ticks every `every` until the task is dropped.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.tick().await;
            }
        })
    }
}

/// A job as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    /// The job.
    pub name: String,
    /// How often, seconds.
    pub every_s: u64,
    /// The last run's start (unix ms).
    pub last_start_ms: Option<u64>,
    /// Its end.
    pub last_end_ms: Option<u64>,
    /// `ok` or `failed`.
    pub last_outcome: Option<String>,
    /// What it did or why it failed.
    pub last_detail: Option<String>,
    /// When it is next due (unix ms).
    pub next_due_ms: u64,
    /// Runs, all time.
    pub runs: u64,
    /// Failures, all time.
    pub failures: u64,
    /// Failed runs since the last success: an alert while above zero.
    pub failing: u64,
    /// Who holds it now, if a run is under way.
    pub running_on: Option<String>,
}

/// Every registered job's record, in the order given.
pub fn job_views(db: &ApiDb, specs: &[JobSpec], now: u64) -> std::result::Result<Vec<JobView>, DbError> {
    specs
        .iter()
        .map(|spec| {
            let s = state_of(db, spec.name)?;
            Ok(JobView {
                name: spec.name.into(),
                every_s: spec.every_ms / 1000,
                last_start_ms: s.last_start_ms,
                last_end_ms: s.last_end_ms,
                last_outcome: s.last_outcome.clone(),
                last_detail: s.last_detail.clone(),
                next_due_ms: s.next_due_ms(spec),
                runs: s.runs,
                failures: s.failures,
                failing: s.failing,
                running_on: s.lease.as_ref().filter(|l| l.until_ms > now).map(|l| l.holder.clone()),
            })
        })
        .collect()
}

/// Share sweeps: every minute.
pub const SHARE_SWEEP: JobSpec = JobSpec { name: "share-sweep", every_ms: 60_000, lease_ms: 600_000 };
/// Credential expiry: hourly (a day boundary moves a document's state).
pub const CREDENTIAL_EXPIRY: JobSpec = JobSpec { name: "credential-expiry", every_ms: 3_600_000, lease_ms: 1_800_000 };
/// Webhook and e-mail deliveries: every second.
pub const NOTIFICATIONS: JobSpec = JobSpec { name: "notifications", every_ms: 1_000, lease_ms: 60_000 };
/// Reminders of consents ending within 24 hours: hourly.
pub const CONSENT_REMINDERS: JobSpec = JobSpec { name: "consent-reminders", every_ms: 3_600_000, lease_ms: 1_800_000 };
/// Abandoned uploads and removed attachments past retention: hourly.
pub const ATTACHMENT_CLEANUP: JobSpec =
    JobSpec { name: "attachment-cleanup", every_ms: 3_600_000, lease_ms: 1_800_000 };

impl Service {
    /// The jobs every tenant runs.
    pub fn standard_jobs(&self) -> Vec<(JobSpec, JobFn)> {
        let (a, b, c, d, e) = (self.clone(), self.clone(), self.clone(), self.clone(), self.clone());
        let http = reqwest::Client::new();
        vec![
            (
                NOTIFICATIONS,
                Arc::new(move || -> JobFuture { Box::pin(crate::notify::notifications_job(e.clone(), http.clone())) }),
            ),
            (SHARE_SWEEP, Arc::new(move || -> JobFuture { Box::pin(a.clone().sweep_shares_job()) })),
            (CREDENTIAL_EXPIRY, Arc::new(move || -> JobFuture { Box::pin(b.clone().expire_credentials_job()) })),
            (ATTACHMENT_CLEANUP, Arc::new(move || -> JobFuture { Box::pin(c.clone().attachment_cleanup_job()) })),
            (CONSENT_REMINDERS, Arc::new(move || -> JobFuture { Box::pin(d.clone().consent_reminders_job()) })),
        ]
    }

    /// A scheduler over this tenant's store and clock, with no jobs.
    pub fn bare_scheduler(&self, holder: &str) -> Scheduler {
        Scheduler::new(self.db.clone(), self.clock.clone(), holder)
    }

    /// A scheduler over this tenant's store and clock with the standard
    /// jobs (the command adds its own before spawning it).
    pub fn scheduler(&self, holder: &str) -> Scheduler {
        let mut s = self.bare_scheduler(holder);
        for (spec, run) in self.standard_jobs() {
            s.add(spec, run);
        }
        s
    }

    /// Sets the jobs `GET /v1/admin/jobs` lists (the scheduler's, once it
    /// is built).
    pub fn set_jobs(&self, specs: Vec<JobSpec>) {
        *self.job_specs.lock().unwrap_or_else(|p| p.into_inner()) = specs;
    }

    /// Dead shares and expired grants swept; used sign-in challenges past
    /// their expiry and idle record locks dropped.
    async fn sweep_shares_job(self) -> std::result::Result<String, String> {
        let s = self.clone();
        let (shares, grants) = tokio::task::spawn_blocking(move || s.shares.sweep(s.now_ms()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let s = self.clone();
        let challenges = tokio::task::spawn_blocking(move || s.housekeeping())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(format!("{shares} shares, {grants} grants, {challenges} challenges swept"))
    }

    async fn expire_credentials_job(self) -> std::result::Result<String, String> {
        let expired = self.expire_credentials().await.map_err(|e| e.to_string())?;
        Ok(format!("{} credentials expired", expired.len()))
    }

    async fn attachment_cleanup_job(self) -> std::result::Result<String, String> {
        let uploads = self.sweep_uploads().await.map_err(|e| e.to_string())?;
        let purged = self.purge_attachments().await.map_err(|e| e.to_string())?;
        Ok(format!("{uploads} abandoned uploads deleted, {purged} removed attachment versions purged"))
    }

    /// Every job this node runs, with its last run, next due time and
    /// alert state. Admins only; audited.
    pub async fn jobs(&self, caller: &Caller) -> Result<Vec<JobView>> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let entry = caller.entry(role, "jobs.read");
        if role != "admin" {
            let refused =
                Error::Forbidden { code: "admin-only", detail: "the node's jobs are for admins".into(), reason: None };
            return self.audited(entry, Err(refused)).await;
        }
        let specs = self.job_specs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let result = job_views(&self.db, &specs, self.now_ms()).map_err(Error::internal);
        self.audited(entry, result).await
    }

    /// Every job's record, unaudited (for `/metrics`).
    pub fn job_status(&self) -> Result<Vec<JobView>> {
        let specs = self.job_specs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(job_views(&self.db, &specs, self.now_ms())?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    const SPEC: JobSpec = JobSpec { name: "count", every_ms: 60_000, lease_ms: 10_000 };

    fn counting(counter: Arc<AtomicU64>, fail: bool) -> JobFn {
        Arc::new(move || -> JobFuture {
            let c = counter.clone();
            Box::pin(async move {
                // Long enough for a second scheduler to try meanwhile.
                tokio::time::sleep(Duration::from_millis(30)).await;
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                if fail {
                    Err(format!("run {n} failed"))
                } else {
                    Ok(format!("run {n}"))
                }
            })
        })
    }

    fn clock_at(t: Arc<AtomicU64>) -> Clock {
        Arc::new(move || t.load(Ordering::SeqCst))
    }

    /// A job runs when due, not before; a job that fell due while the node
    /// was down (many periods) runs once at the first tick after start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_missed_while_down_runs_once_on_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (runs, now) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(1_000_000)));
        {
            let db = Arc::new(ApiDb::open(dir.path()).expect("open"));
            let mut s = Scheduler::new(db, clock_at(now.clone()), "node-1");
            s.add(SPEC, counting(runs.clone(), false));
            assert!(s.tick().await.is_empty(), "a new job waits a period");
            now.fetch_add(60_000, Ordering::SeqCst);
            assert_eq!(s.tick().await.len(), 1, "due");
            now.fetch_add(30_000, Ordering::SeqCst);
            assert!(s.tick().await.is_empty(), "not due yet");
        }
        // Down for ten periods; a new process (another holder) starts.
        now.fetch_add(600_000, Ordering::SeqCst);
        let db = Arc::new(ApiDb::open(dir.path()).expect("reopen"));
        let mut s = Scheduler::new(db.clone(), clock_at(now.clone()), "node-1-restarted");
        s.add(SPEC, counting(runs.clone(), false));
        let ran = s.tick().await;
        assert_eq!(ran, vec![("count", Ok("run 2".to_string()))]);
        assert!(s.tick().await.is_empty(), "once, not once per missed period");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let view = &job_views(&db, &[SPEC], now.load(Ordering::SeqCst)).expect("views")[0];
        assert_eq!((view.runs, view.last_outcome.as_deref(), view.running_on.as_deref()), (2, Some("ok"), None));
        assert_eq!(view.next_due_ms, now.load(Ordering::SeqCst) + 60_000);
    }

    /// Two schedulers (two nodes) over one store, ticking at once: one run.
    /// A node killed mid-run leaves a lease that lapses; then the other
    /// takes the job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_over_one_store_run_a_job_once_and_a_lapsed_lease_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(ApiDb::open(dir.path()).expect("open"));
        let (runs, now) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(5_000_000)));
        let node = |name: &str| {
            let mut s = Scheduler::new(db.clone(), clock_at(now.clone()), name);
            s.add(SPEC, counting(runs.clone(), false));
            s
        };
        let (a, b) = (node("a"), node("b"));
        assert!(a.tick().await.is_empty(), "registered");
        now.fetch_add(60_000, Ordering::SeqCst);
        for _ in 0..5 {
            let (ra, rb) = tokio::join!(a.tick(), b.tick());
            assert_eq!(ra.len() + rb.len(), 1, "exactly one node ran it");
            now.fetch_add(60_000, Ordering::SeqCst);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 5);

        // A run may outlast its period (a long backup): its lease, not its
        // start time, keeps others out. "a" takes the job and dies mid-run.
        let long = JobSpec { lease_ms: 600_000, ..SPEC };
        let mut c = Scheduler::new(db.clone(), clock_at(now.clone()), "c");
        c.add(long, counting(runs.clone(), false));
        swap(&db, "count", |s| s.take(&long, "a-dead", now.load(Ordering::SeqCst))).expect("take");
        now.fetch_add(61_000, Ordering::SeqCst);
        assert!(c.tick().await.is_empty(), "due again, but held by the dead node until its lease lapses");
        let view = &job_views(&db, &[long], now.load(Ordering::SeqCst)).expect("views")[0];
        assert_eq!(view.running_on.as_deref(), Some("a-dead"));
        now.fetch_add(540_000, Ordering::SeqCst);
        assert_eq!(c.tick().await.len(), 1, "the lease lapsed: another node runs it");
        assert_eq!(runs.load(Ordering::SeqCst), 6);
    }

    /// A failing run is recorded and stays an alert until a success.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_are_recorded_and_stay_an_alert_until_a_success() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(ApiDb::open(dir.path()).expect("open"));
        let (runs, now) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut failing = Scheduler::new(db.clone(), clock_at(now.clone()), "n");
        failing.add(SPEC, counting(runs.clone(), true));
        assert!(failing.tick().await.is_empty(), "registered");
        now.fetch_add(60_000, Ordering::SeqCst);
        for _ in 0..2 {
            assert!(failing.tick().await[0].1.is_err());
            now.fetch_add(60_000, Ordering::SeqCst);
        }
        let view = &job_views(&db, &[SPEC], 0).expect("views")[0];
        assert_eq!((view.failures, view.failing, view.last_detail.as_deref()), (2, 2, Some("run 2 failed")));
        let mut healthy = Scheduler::new(db.clone(), clock_at(now.clone()), "n");
        healthy.add(SPEC, counting(runs.clone(), false));
        assert!(healthy.tick().await[0].1.is_ok());
        let view = &job_views(&db, &[SPEC], 0).expect("views")[0];
        assert_eq!((view.runs, view.failures, view.failing), (3, 2, 0));
    }
}
