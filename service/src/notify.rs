//! Patient notifications: a durable outbox and signed webhooks.
//!
//! A patient subscribes a webhook (`subscribe`); from then on, every audit
//! entry that means something for them ([`medanchor_ops::notify::event`]:
//! someone else read or wrote their data, a break-glass access) puts an
//! outbox row **in the audit log's own commit** (`audit::commit`), so an
//! event is durable exactly when the entry that records it is. The
//! notifier (the `notifications` job, every second) delivers each row at least once — POST, JSON,
//! `Medanchor-Signature` (HMAC-SHA256 over `t.body`) and `Medanchor-Event-Id`
//! (the receiver de-duplicates on it) — removes it on a 2xx, and otherwise
//! tries again with exponential backoff, up to `MAX_ATTEMPTS`, after which
//! the row is kept apart (dead) and logged. No PHI leaves: who, when, which
//! action on which opaque record.
//!
//! The webhook's secret is never stored: it is derived from the node's key,
//! the patient and a nonce kept with the subscription; a new subscription
//! (or `PUT` again) rotates it. Webhook addresses are checked when used:
//! loopback, private and link-local addresses are refused unless the node
//! allows them (`Config::webhook_allow_private`, for a hospital network or
//! tests), and the request goes to the address that was checked.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use medanchor_contracts::principal::Principal;
pub use medanchor_ops::notify::Digest;
use medanchor_ops::notify::{backoff_ms, Event, MAX_ATTEMPTS};
use medanchor_ops::webhook;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::db::{ApiDb, Cf, DbError};
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

const SUB: &[u8] = b"notify/sub/";
const OUT: &[u8] = b"notify/out/";
const DEAD: &[u8] = b"notify/dead/";
const PREF: &[u8] = b"notify/pref/";
const MAIL: &[u8] = b"notify/mail/";
const MAIL_DEAD: &[u8] = b"notify/mail-dead/";
const REMINDED: &[u8] = b"notify/reminded/";

/// Longest e-mail address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// Longest webhook URL.
pub const MAX_URL: usize = 2048;

/// How long a delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Deliveries tried per pass (rows not yet due are skipped, not counted).
const PASS: usize = 256;

/// Deliveries in flight at once.
const IN_FLIGHT: usize = 16;

fn key(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

/// A patient's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Subscription {
    url: String,
    /// Derives the secret with the node's key (the secret is not stored).
    nonce: String,
    created_ms: u64,
}

/// An event waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Row {
    event: Event,
    attempts: u32,
    next_ms: u64,
    last_error: Option<String>,
}

/// A subscription as its patient sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookView {
    /// Where events are POSTed.
    pub webhook_url: String,
    /// The signing secret (hex): shown when the subscription is made, never
    /// again.
    pub secret: Option<String>,
    /// Events waiting for delivery.
    pub pending: u64,
    /// Events given up on.
    pub failed: u64,
}

/// Adds `entry`'s outbox row (index `index`) to the audit commit's `batch`
/// when it notifies a subscribed patient.
pub(crate) fn outbox_row(
    db: &ApiDb,
    batch: &mut rocksdb::WriteBatch,
    entry: &AuditEntry,
    index: u64,
) -> std::result::Result<(), DbError> {
    let facts = entry.facts(index);
    let Some(event) = medanchor_ops::notify::event(&facts) else { return Ok(()) };
    if let Some(bytes) = db.get(Cf::Meta, &key(PREF, event.patient.as_bytes()))? {
        let prefs: Preferences = serde_json::from_slice(&bytes).map_err(|e| DbError::Corrupt(e.to_string()))?;
        if prefs.email.is_some() {
            let due = prefs.digest.due_ms(event.at_ms, event.urgent());
            let row = Row { event: event.clone(), attempts: 0, next_ms: due, last_error: None };
            let bytes = serde_json::to_vec(&row).map_err(|e| DbError::Corrupt(e.to_string()))?;
            batch.put_cf(db.cf(Cf::Meta), key(MAIL, &index.to_be_bytes()), bytes);
        }
    }
    if db.get(Cf::Meta, &key(SUB, event.patient.as_bytes()))?.is_none() {
        return Ok(());
    }
    let row = Row { event, attempts: 0, next_ms: 0, last_error: None };
    let bytes = serde_json::to_vec(&row).map_err(|e| DbError::Corrupt(e.to_string()))?;
    batch.put_cf(db.cf(Cf::Meta), key(OUT, &index.to_be_bytes()), bytes);
    Ok(())
}

/// A patient's notification settings (off-chain: the chain holds
/// consent, not how to reach the patient).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preferences {
    /// Where e-mail goes; absent: no e-mail.
    pub email: Option<String>,
    /// `immediate` (each event), `hourly` or `daily` (one message per
    /// period). Break-glass accesses and lock-outs are sent at once
    /// whatever this says.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(immediate|hourly|daily)$"))]
    pub digest: Digest,
}

/// The SMTP server the node sends e-mail through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    /// `smtp://host:port` (STARTTLS when offered… or plain on loopback),
    /// `smtps://host:port` (TLS); credentials as `user:password@` (from
    /// configuration or the environment, never logged).
    pub url: String,
    /// The sender address.
    pub from: String,
}

/// The addresses accepted (the API document's pattern): a local part of
/// letters, digits and `._%+-`, and a host name of two or more labels.
pub const EMAIL_PATTERN: &str =
    r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// Whether `email` matches [`EMAIL_PATTERN`].
fn email_shaped(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    let local_ok = !local.is_empty() && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    local_ok && labels.len() >= 2 && labels.iter().all(label_ok)
}

/// A checked e-mail address.
fn check_email(email: &str) -> Result<lettre::Address> {
    if email.len() > MAX_EMAIL {
        return Err(Error::bad("invalid-email", format!("at most {MAX_EMAIL} bytes")));
    }
    if !email_shaped(email) {
        return Err(Error::bad("invalid-email", "an address like name@example.org"));
    }
    email.parse::<lettre::Address>().map_err(|e| Error::bad("invalid-email", e.to_string()))
}

/// Whether `url` is a webhook address this node may call: http(s), a host,
/// bounded. (The address it resolves to is checked at each delivery.)
fn check_url(url: &str) -> Result<reqwest::Url> {
    if url.len() > MAX_URL {
        return Err(Error::bad("invalid-webhook", format!("at most {MAX_URL} bytes")));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::bad("invalid-webhook", e.to_string()))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(Error::bad("invalid-webhook", "an http(s) URL with a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::bad("invalid-webhook", "no credentials in the URL"));
    }
    Ok(parsed)
}

/// Addresses a webhook may not reach unless the node allows private ones:
/// loopback, private, link-local (cloud metadata), unspecified, multicast.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

impl Service {
    fn webhook_secret(&self, patient: &str, nonce: &str) -> [u8; 32] {
        crate::auth::derive_key(&self.webhook_key, format!("webhook\0{patient}\0{nonce}").as_bytes())
    }

    async fn patient_only(&self, caller: &Caller, patient: &Principal, action: &str) -> Result<AuditEntry> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, action);
        entry.patient = Some(patient.to_string());
        if &who != patient {
            let refused = Error::Forbidden {
                code: "patient-only",
                detail: "only the patient manages their notifications".into(),
                reason: None,
            };
            return self.audited(entry, Err(refused)).await;
        }
        Ok(entry)
    }

    /// Subscribes (or re-subscribes, rotating the secret) the patient's
    /// webhook; the answer holds the secret, once. The patient only;
    /// audited.
    pub async fn subscribe_webhook(&self, caller: &Caller, patient: &Principal, url: &str) -> Result<WebhookView> {
        let entry = self.patient_only(caller, patient, "notify.subscribe").await?;
        let result = async {
            let url = check_url(url)?;
            let mut nonce = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
            let sub = Subscription { url: url.to_string(), nonce: hex::encode(nonce), created_ms: self.now_ms() };
            let mut batch = self.db.batch();
            let bytes = serde_json::to_vec(&sub).map_err(Error::internal)?;
            batch.put_cf(self.db.cf(Cf::Meta), key(SUB, patient.to_string().as_bytes()), bytes);
            self.db.write(batch)?;
            let secret = hex::encode(self.webhook_secret(&patient.to_string(), &sub.nonce));
            let (pending, failed) = self.outbox_counts(&patient.to_string())?;
            Ok(WebhookView { webhook_url: sub.url, secret: Some(secret), pending, failed })
        }
        .await;
        self.audited(entry, result).await
    }

    /// The patient's webhook (without its secret). The patient only.
    pub async fn webhook(&self, caller: &Caller, patient: &Principal) -> Result<WebhookView> {
        let entry = self.patient_only(caller, patient, "notify.read").await?;
        let result = (|| {
            let sub = self.subscription(&patient.to_string())?.ok_or_else(|| Error::NotFound("no webhook".into()))?;
            let (pending, failed) = self.outbox_counts(&patient.to_string())?;
            Ok(WebhookView { webhook_url: sub.url, secret: None, pending, failed })
        })();
        self.audited(entry, result).await
    }

    /// Removes the patient's webhook (undelivered events are dropped when
    /// next looked at). The patient only; audited.
    pub async fn unsubscribe_webhook(&self, caller: &Caller, patient: &Principal) -> Result<()> {
        let entry = self.patient_only(caller, patient, "notify.unsubscribe").await?;
        let result = (|| {
            self.subscription(&patient.to_string())?.ok_or_else(|| Error::NotFound("no webhook".into()))?;
            let mut batch = self.db.batch();
            batch.delete_cf(self.db.cf(Cf::Meta), key(SUB, patient.to_string().as_bytes()));
            self.db.write(batch)?;
            Ok(())
        })();
        self.audited(entry, result).await
    }

    fn subscription(&self, patient: &str) -> Result<Option<Subscription>> {
        self.db
            .get(Cf::Meta, &key(SUB, patient.as_bytes()))?
            .map(|b| serde_json::from_slice(&b).map_err(Error::internal))
            .transpose()
    }

    fn outbox_counts(&self, patient: &str) -> Result<(u64, u64)> {
        let count = |prefix: &[u8]| -> Result<u64> {
            let mut n = 0;
            for (_, v) in self.db.scan(Cf::Meta, prefix)? {
                let row: Row = serde_json::from_slice(&v).map_err(Error::internal)?;
                n += u64::from(row.event.patient == patient);
            }
            Ok(n)
        };
        Ok((count(OUT)?, count(DEAD)?))
    }

    /// Events waiting in the outbox (every patient's).
    pub fn outbox_depth(&self) -> Result<u64> {
        Ok(self.db.scan(Cf::Meta, OUT)?.len() as u64)
    }

    /// One pass of the notifier: up to [`PASS`] due rows, delivered
    /// [`IN_FLIGHT`] at a time, then removed or rescheduled in one synced
    /// write. Returns (delivered, failed this pass). A crash before that
    /// write delivers the pass's events again (at least once; receivers
    /// de-duplicate on the event id); events of one patient may arrive out
    /// of order (each carries its time).
    pub async fn deliver_once(&self, http: &reqwest::Client) -> Result<(usize, usize)> {
        let now = self.now_ms();
        let mut due = Vec::new();
        for (k, v) in self.db.scan(Cf::Meta, OUT)? {
            let row: Row = serde_json::from_slice(&v).map_err(Error::internal)?;
            if row.next_ms <= now {
                due.push((k, row));
                if due.len() >= PASS {
                    break;
                }
            }
        }
        if due.is_empty() {
            return Ok((0, 0));
        }
        // Each subscription's address is resolved and checked once per pass.
        let mut subs: HashMap<String, Option<Subscription>> = HashMap::new();
        let mut targets: HashMap<String, std::result::Result<Arc<Target>, String>> = HashMap::new();
        let mut batch = self.db.batch();
        let mut sends = Vec::new();
        for (k, row) in due {
            let patient = row.event.patient.clone();
            if !subs.contains_key(&patient) {
                let sub = self.subscription(&patient)?;
                subs.insert(patient.clone(), sub);
            }
            let Some(sub) = subs[&patient].clone() else {
                // Unsubscribed since: nobody to tell.
                batch.delete_cf(self.db.cf(Cf::Meta), &k);
                continue;
            };
            if !targets.contains_key(&sub.url) {
                let target = self.target(http, &sub.url).await.map(Arc::new);
                targets.insert(sub.url.clone(), target);
            }
            sends.push((k, row, sub.clone(), targets[&sub.url].clone()));
        }
        let outcomes: Vec<_> = futures::stream::iter(sends)
            .map(|(k, row, sub, target)| async move {
                let sent = match target {
                    Ok(t) => self.send(&t, &sub, &row.event).await,
                    Err(e) => Err(e),
                };
                (k, row, sent)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let (mut delivered, mut failed) = (0, 0);
        for (k, mut row, sent) in outcomes {
            match sent {
                Ok(()) => {
                    batch.delete_cf(self.db.cf(Cf::Meta), &k);
                    delivered += 1;
                }
                Err(e) => {
                    failed += 1;
                    row.attempts += 1;
                    row.next_ms = now + backoff_ms(row.attempts);
                    row.last_error = Some(e.clone());
                    let bytes = serde_json::to_vec(&row).map_err(Error::internal)?;
                    if row.attempts >= MAX_ATTEMPTS {
                        tracing::error!(event = %row.event.id, attempts = row.attempts, error = %e, "NOTIFICATION GIVEN UP");
                        batch.delete_cf(self.db.cf(Cf::Meta), &k);
                        batch.put_cf(self.db.cf(Cf::Meta), key(DEAD, &k[OUT.len()..]), bytes);
                    } else {
                        tracing::warn!(event = %row.event.id, attempts = row.attempts, error = %e, "webhook delivery failed; will retry");
                        batch.put_cf(self.db.cf(Cf::Meta), &k, bytes);
                    }
                }
            }
        }
        self.db.write(batch)?;
        Ok((delivered, failed))
    }

    /// Resolves a subscription's address and checks it: the client to
    /// reach it, pinned to the address checked (no second lookup to be
    /// rebound), without redirects (a 3xx is a failure, not a hop).
    async fn target(&self, http: &reqwest::Client, url: &str) -> std::result::Result<Target, String> {
        let url = check_url(url).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("no host")?.to_string();
        let port = url.port_or_known_default().ok_or("no port")?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("resolving {host}: {e}"))?
            .collect();
        let addr = addrs
            .into_iter()
            .find(|a| self.config.webhook_allow_private || !is_private(a.ip()))
            .ok_or_else(|| format!("{host} resolves to no address this node may call (private or loopback)"))?;
        let client = reqwest::Client::builder()
            .resolve(&host, addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .unwrap_or_else(|_| http.clone());
        Ok(Target { url, client })
    }

    /// POSTs one event, signed under its subscription's secret.
    async fn send(&self, target: &Target, sub: &Subscription, event: &Event) -> std::result::Result<(), String> {
        let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let t = self.now_ms() / 1000;
        let secret = self.webhook_secret(&event.patient, &sub.nonce);
        let response = target
            .client
            .post(target.url.clone())
            .header("content-type", "application/json")
            .header(webhook::SIGNATURE_HEADER, webhook::sign(&secret, t, &body))
            .header(webhook::EVENT_ID_HEADER, &event.id)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }
}

/// A checked webhook address and the client pinned to it.
struct Target {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Service {
    /// Sets the patient's notification settings. The patient only; audited.
    pub async fn set_preferences(
        &self,
        caller: &Caller,
        patient: &Principal,
        prefs: Preferences,
    ) -> Result<Preferences> {
        let entry = self.patient_only(caller, patient, "notify.preferences").await?;
        let result = (|| {
            if let Some(email) = &prefs.email {
                check_email(email)?;
            }
            let mut batch = self.db.batch();
            let bytes = serde_json::to_vec(&prefs).map_err(Error::internal)?;
            batch.put_cf(self.db.cf(Cf::Meta), key(PREF, patient.to_string().as_bytes()), bytes);
            self.db.write(batch)?;
            Ok(prefs)
        })();
        self.audited(entry, result).await
    }

    /// The patient's notification settings (e-mail off and immediate when
    /// never set). The patient only; audited.
    pub async fn preferences(&self, caller: &Caller, patient: &Principal) -> Result<Preferences> {
        let entry = self.patient_only(caller, patient, "notify.read").await?;
        let result = self.stored_preferences(&patient.to_string());
        self.audited(entry, result).await
    }

    fn stored_preferences(&self, patient: &str) -> Result<Preferences> {
        Ok(match self.db.get(Cf::Meta, &key(PREF, patient.as_bytes()))? {
            Some(b) => serde_json::from_slice(&b).map_err(Error::internal)?,
            None => Preferences { email: None, digest: Digest::Immediate },
        })
    }

    /// E-mails waiting (every patient's).
    pub fn mail_depth(&self) -> Result<u64> {
        Ok(self.db.scan(Cf::Meta, MAIL)?.len() as u64)
    }

    /// The outbox for `/metrics`: (webhook rows waiting, webhook rows given
    /// up, e-mail rows waiting, e-mail rows given up).
    pub fn outbox_gauges(&self) -> Result<(u64, u64, u64, u64)> {
        let n = |prefix: &[u8]| -> Result<u64> { Ok(self.db.scan(Cf::Meta, prefix)?.len() as u64) };
        Ok((n(OUT)?, n(DEAD)?, n(MAIL)?, n(MAIL_DEAD)?))
    }

    /// One pass of the mailer: every patient's due events, one message per
    /// patient (their digest, or each urgent event at once), through the
    /// configured SMTP server; sent rows removed, failed ones rescheduled
    /// with backoff, in one synced write. Returns (messages sent, failed).
    /// A crash between the SMTP server's acceptance and that write sends
    /// the same message again, under the same `Message-ID`.
    pub async fn deliver_mail_once(&self) -> Result<(usize, usize)> {
        let Some(smtp) = self.config.smtp.clone() else { return Ok((0, 0)) };
        let now = self.now_ms();
        let mut due: BTreeMap<String, Vec<(Vec<u8>, Row)>> = BTreeMap::new();
        for (k, v) in self.db.scan(Cf::Meta, MAIL)? {
            let row: Row = serde_json::from_slice(&v).map_err(Error::internal)?;
            if row.next_ms <= now {
                due.entry(row.event.patient.clone()).or_default().push((k, row));
            }
        }
        if due.is_empty() {
            return Ok((0, 0));
        }
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&smtp.url)
            .map_err(|e| Error::Unavailable(format!("the SMTP server's address: {e}")))?
            .timeout(Some(DELIVERY_TIMEOUT))
            .build();
        let from: lettre::message::Mailbox =
            smtp.from.parse().map_err(|e| Error::internal(format!("the sender address: {e}")))?;
        let (mut sent, mut failed) = (0, 0);
        let mut batch = self.db.batch();
        for (patient, rows) in due {
            let prefs = self.stored_preferences(&patient)?;
            let Some(to) = prefs.email.as_deref().and_then(|e| check_email(e).ok()) else {
                // E-mail turned off since: nobody to tell.
                for (k, _) in &rows {
                    batch.delete_cf(self.db.cf(Cf::Meta), k);
                }
                continue;
            };
            let events: Vec<Event> = rows.iter().map(|(_, r)| r.event.clone()).collect();
            let (subject, body) = medanchor_ops::notify::message(&events);
            let outcome = async {
                let message = lettre::Message::builder()
                    .from(from.clone())
                    .to(lettre::message::Mailbox::new(None, to))
                    .subject(subject)
                    .message_id(Some(medanchor_ops::notify::message_id(&events, &self.config.domain)))
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(body)
                    .map_err(|e| e.to_string())?;
                lettre::AsyncTransport::send(&transport, message).await.map_err(|e| e.to_string())
            }
            .await;
            match outcome {
                Ok(_) => {
                    sent += 1;
                    for (k, _) in &rows {
                        batch.delete_cf(self.db.cf(Cf::Meta), k);
                    }
                }
                Err(e) => {
                    failed += 1;
                    for (k, mut row) in rows {
                        row.attempts += 1;
                        row.next_ms = now + backoff_ms(row.attempts);
                        row.last_error = Some(e.clone());
                        let bytes = serde_json::to_vec(&row).map_err(Error::internal)?;
                        if row.attempts >= MAX_ATTEMPTS {
                            batch.delete_cf(self.db.cf(Cf::Meta), &k);
                            batch.put_cf(self.db.cf(Cf::Meta), key(MAIL_DEAD, &k[MAIL.len()..]), bytes);
                        } else {
                            batch.put_cf(self.db.cf(Cf::Meta), &k, bytes);
                        }
                    }
                    tracing::warn!(error = %e, "notification e-mail failed; will retry");
                }
            }
        }
        self.db.write(batch)?;
        Ok((sent, failed))
    }
}

/// How far ahead a consent's end is announced: 24 hours of burn blocks.
const REMIND_WITHIN_BLOCKS: u64 = 24 * medanchor_contracts::types::BURN_BLOCKS_PER_HOUR;

impl Service {
    /// The reminder job: for every patient who gets notifications (a
    /// webhook or e-mail), each active consent of theirs that ends within
    /// 24 hours is announced once — an audit entry `consent.expiring`
    /// (the node's, about the patient; provider, data type and end in its
    /// detail), whose notification rows go in its own commit. A marker
    /// per consent and end keeps it to once (written after the entry, so
    /// a crash between repeats a reminder rather than loses one).
    pub(crate) async fn consent_reminders_job(self) -> std::result::Result<String, String> {
        let status = self.chain.status().map_err(|e| e.to_string())?;
        let Some(now_burn) = status.tip_burn_block_height else { return Ok("no chain yet".into()) };
        let mut patients = std::collections::BTreeSet::new();
        for prefix in [SUB, PREF] {
            for (k, _) in self.db.scan(Cf::Meta, prefix).map_err(|e| e.to_string())? {
                patients.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            }
        }
        let mut reminded = 0;
        for patient in patients {
            let Ok(principal) = patient.parse::<Principal>() else { continue };
            let consents = self.chain.consents(&principal).map_err(|e| e.to_string())?;
            for c in consents {
                let Some(end) = c.expires_at else { continue };
                let active = c.revoked_at.is_none() && end > now_burn;
                if !active || end > now_burn + REMIND_WITHIN_BLOCKS {
                    continue;
                }
                let marker =
                    [REMINDED, format!("{patient}\0{}\0{}\0{end}", c.provider, c.data_type).as_bytes()].concat();
                if self.db.get(Cf::Meta, &marker).map_err(|e| e.to_string())?.is_some() {
                    continue;
                }
                let hours = (end - now_burn).div_ceil(medanchor_contracts::types::BURN_BLOCKS_PER_HOUR);
                let mut entry = AuditEntry::system("consent.expiring", crate::state::now_ms());
                entry.patient = Some(patient.clone());
                entry.detail = Some(format!(
                    "{} may read your {} until burn block {end} (about {hours} h from now)",
                    c.provider, c.data_type
                ));
                self.audit.append(entry).await.map_err(|e| e.to_string())?;
                let mut batch = self.db.batch();
                batch.put_cf(self.db.cf(Cf::Meta), &marker, []);
                self.db.write(batch).map_err(|e| e.to_string())?;
                reminded += 1;
            }
        }
        Ok(format!("{reminded} consent reminders"))
    }
}

/// The notifier as a job (every second): a webhook pass and an e-mail
/// pass. A patient's receiver that refuses is that delivery's failure,
/// retried with backoff; the run fails — an alert — when the store fails
/// or the SMTP server refused every message it was given.
pub(crate) async fn notifications_job(state: Service, http: reqwest::Client) -> std::result::Result<String, String> {
    let (delivered, failed) = state.deliver_once(&http).await.map_err(|e| e.to_string())?;
    let (sent, refused) = state.deliver_mail_once().await.map_err(|e| e.to_string())?;
    if refused > 0 && sent == 0 {
        return Err(format!("the SMTP server refused all {refused} messages (see the log)"));
    }
    Ok(format!("{delivered} webhook deliveries ({failed} to retry), {sent} e-mails ({refused} to retry)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_checked() {
        for (email, ok) in [
            ("patient@example.org", true),
            ("first.last+tag@mail.example.co.uk", true),
            ("a_b%c-d@x1-y.z9", true),
            ("0000", false),
            ("@example.org", false),
            ("me@localhost", false),
            ("me@-x.org", false),
            ("me@x-.org", false),
            ("me@x..org", false),
            ("me me@x.org", false),
            ("me@x.org\r\nBcc: victim@y.org", false),
        ] {
            assert_eq!(check_email(email).is_ok(), ok, "{email}");
        }
        assert!(check_email(&format!("{}@x.org", "a".repeat(250))).is_err(), "too long");
    }

    #[test]
    fn webhook_addresses_are_checked() {
        for (url, ok) in [
            ("https://hooks.example.org/p/1", true),
            ("http://10.0.0.5:8080/x", true),
            ("ftp://example.org/", false),
            ("https://user:pw@example.org/", false),
            ("not a url", false),
            ("https://", false),
        ] {
            assert_eq!(check_url(url).is_ok(), ok, "{url}");
        }
        for (ip, private) in [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("0.0.0.0", true),
            ("::1", true),
            ("fd00::1", true),
            ("fe80::1", true),
            ("::ffff:127.0.0.1", true),
            ("93.184.216.34", false),
            ("2606:2800:220:1::1", false),
        ] {
            assert_eq!(is_private(ip.parse().expect("ip")), private, "{ip}");
        }
    }
}
