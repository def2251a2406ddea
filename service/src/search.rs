//! Search over records and patients, with no plaintext at rest and results
//! filtered by the chain's rules.
//!
//! The index is `medanchor-clinical`'s blind index
//! ([`medanchor_clinical::search`]) in the API database's `search` family,
//! under a key derived from the node's secret and the tenant. What it
//! holds per document:
//!
//! - a record: its patient, its first version's author (the provider), its
//!   record type, the diagnosis codes and medication names of its latest
//!   written version's structured content, and its patient's name (from
//!   the health profile), sorted by the first version's time, newest first;
//! - a patient: the name, phone and blood group of their profile.
//!
//! Each document's keys are listed under `d ‖ scope ‖ id`, so a new
//! version replaces exactly the keys of the last one; writes go in the
//! batch of the record or profile they index, so the index never lags an
//! acknowledged write. A patient's new name replaces the name keys of
//! their records in the profile's batch.
//!
//! A query's candidates pass the one authorization rule before they count
//! (a record: `get-record`'s rule for the caller, as a read would; a name
//! criterion also needs the patient's basic-info; a patient: the data type
//! of each field searched), so a result list — and what it highlights,
//! decrypted for the caller — never shows what a read would refuse. Pages
//! resume from a cursor sealed under the node's key and bound to the
//! caller and the query: it reveals nothing and works for nothing else.
//! Each search is audited once, and once per patient whose data it
//! returned (`record.search`, `patient.search`: disclosures).

use std::cell::RefCell;

use aes_gcm::aead::{Aead, KeyInit, Payload as AeadPayload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use medanchor_clinical::search::{
    entries, entries_of, field_of, highlight, position_of, record_sort, Doc, Field, OrderedKeys, Position, Query,
    Scope, SearchError, SearchKey,
};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessMethod, DataType, RecordType};
use medanchor_contracts::RecordId;
use rand::RngCore;
use rocksdb::WriteBatch;
use serde_json::Value;

use crate::authz::Operation;
use crate::db::{ApiDb, Cf, DbError, RecordMeta};
use crate::envelope::{Binding, Sealed};
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// Results per page by default.
pub const DEFAULT_LIMIT: usize = 20;
/// Most results per page.
pub const MAX_LIMIT: usize = 100;
/// Most candidates one page examines (accepted or not).
pub const MAX_EXAMINED: usize = 2_000;
/// The `meta` key saying the index covers every stored record and profile.
pub const INDEXED_META_KEY: &[u8] = b"search_indexed";

/// The keys of the node's search index, derived from its secret.
#[derive(Clone)]
pub struct SearchKeys {
    /// The blind-token key (per tenant).
    pub(crate) tokens: SearchKey,
    /// Seals cursors.
    cursor: [u8; 32],
}

impl std::fmt::Debug for SearchKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchKeys(..)")
    }
}

impl SearchKeys {
    /// The keys of `tenant` under the node's secret `root`.
    pub fn derive(root: &[u8; 32], tenant: &str) -> SearchKeys {
        let tokens = crate::auth::derive_key(root, format!("medanchor search tokens v1\0{tenant}").as_bytes());
        let cursor = crate::auth::derive_key(root, format!("medanchor search cursor v1\0{tenant}").as_bytes());
        SearchKeys { tokens: SearchKey::new(tokens), cursor }
    }

    /// The blind-token key.
    pub fn tokens(&self) -> &SearchKey {
        &self.tokens
    }

    fn seal(&self, aad: &[u8], position: &Position) -> String {
        let cipher = Aes256Gcm::new_from_slice(&self.cursor).unwrap_or_else(|_| unreachable!("32-byte key"));
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), AeadPayload { msg: &position.to_bytes(), aad })
            .unwrap_or_else(|_| unreachable!("in-memory encryption"));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    fn open(&self, aad: &[u8], cursor: &str) -> Result<Position> {
        let bad = || Error::bad("invalid-cursor", "the cursor is not one this search issued to you");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| bad())?;
        if bytes.len() < 12 + 16 + 8 || bytes.len() > 512 {
            return Err(bad());
        }
        let cipher = Aes256Gcm::new_from_slice(&self.cursor).unwrap_or_else(|_| unreachable!("32-byte key"));
        let plain = cipher
            .decrypt(Nonce::from_slice(&bytes[..12]), AeadPayload { msg: &bytes[12..], aad })
            .map_err(|_| bad())?;
        Position::from_bytes(&plain).ok_or_else(bad)
    }
}

/// Serializes the index writes about one patient (a record's entries
/// carry the patient's name; a profile write renames them), striped so
/// memory stays fixed: a record written while its patient is renamed
/// never keeps the old name's entries.
pub(crate) struct PatientStripes(Vec<std::sync::Mutex<()>>);

impl Default for PatientStripes {
    fn default() -> Self {
        PatientStripes((0..64).map(|_| std::sync::Mutex::new(())).collect())
    }
}

impl PatientStripes {
    /// The stripe of `patient`, locked.
    pub(crate) fn lock(&self, patient: &str) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        patient.hash(&mut h);
        let stripe = &self.0[(h.finish() % self.0.len() as u64) as usize];
        stripe.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// [`OrderedKeys`] over the `search` family, one iterator per query.
pub struct IndexStore<'a> {
    iter: RefCell<rocksdb::DBRawIteratorWithThreadMode<'a, rocksdb::DB>>,
}

impl<'a> IndexStore<'a> {
    /// A reader of `db`'s index.
    pub fn new(db: &'a ApiDb) -> IndexStore<'a> {
        IndexStore { iter: RefCell::new(db.raw().raw_iterator_cf(db.cf(Cf::Search))) }
    }
}

impl OrderedKeys for IndexStore<'_> {
    type Error = rocksdb::Error;

    fn seek(&self, from: &[u8], before: &[u8]) -> std::result::Result<Option<Vec<u8>>, rocksdb::Error> {
        let mut it = self.iter.borrow_mut();
        it.seek(from);
        if !it.valid() {
            return it.status().map(|()| None);
        }
        Ok(it.key().filter(|k| *k < before).map(<[u8]>::to_vec))
    }
}

fn doc_key(scope: Scope, id: &[u8]) -> Vec<u8> {
    [&[b'd', scope as u8][..], id].concat()
}

fn encode_keys(keys: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for k in keys {
        out.extend_from_slice(&(k.len() as u16).to_be_bytes());
        out.extend_from_slice(k);
    }
    out
}

fn decode_keys(mut b: &[u8]) -> std::result::Result<Vec<Vec<u8>>, DbError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = b.get(..2).map(|n| u16::from_be_bytes([n[0], n[1]]) as usize);
        let Some(k) = n.and_then(|n| b.get(2..2 + n)) else {
            return Err(DbError::Corrupt("a search document's key list".into()));
        };
        out.push(k.to_vec());
        b = &b[2 + k.len()..];
    }
    Ok(out)
}

impl ApiDb {
    /// The keys a document is indexed under now.
    fn doc_keys(&self, scope: Scope, id: &[u8]) -> std::result::Result<Vec<Vec<u8>>, DbError> {
        self.get(Cf::Search, &doc_key(scope, id))?.map_or(Ok(Vec::new()), |v| decode_keys(&v))
    }

    /// Adds to `batch` the removal of a record's search entries (its
    /// erasure).
    pub(crate) fn drop_search_doc(&self, batch: &mut WriteBatch, id: &[u8; 16]) -> std::result::Result<(), DbError> {
        self.replace_doc(batch, Scope::Records, id, &[])?;
        batch.delete_cf(self.cf(Cf::Search), doc_key(Scope::Records, id));
        Ok(())
    }

    /// Adds to `batch` what makes `keys` the document's entries (deleting
    /// the ones it had that it no longer has).
    fn replace_doc(
        &self,
        batch: &mut WriteBatch,
        scope: Scope,
        id: &[u8],
        keys: &[Vec<u8>],
    ) -> std::result::Result<(), DbError> {
        let cf = self.cf(Cf::Search);
        for old in self.doc_keys(scope, id)? {
            if keys.binary_search(&old).is_err() {
                batch.delete_cf(cf, old);
            }
        }
        for k in keys {
            batch.put_cf(cf, k, []);
        }
        batch.put_cf(cf, doc_key(scope, id), encode_keys(keys));
        Ok(())
    }
}

/// What a record is found by, from its first version and the latest
/// plaintext written.
pub(crate) struct RecordTerms {
    pub(crate) created_ms: u64,
    pub(crate) author: String,
    pub(crate) diagnoses: Vec<String>,
    pub(crate) medications: Vec<String>,
}

impl Service {
    /// The search index's keys.
    pub fn search_keys(&self) -> &SearchKeys {
        &self.search
    }

    /// The terms of a version about to be stored: its structured content's
    /// codes and medications, and the first version's time and author.
    pub(crate) fn record_terms(
        &self,
        id: &[u8; 16],
        version: u64,
        author: &Principal,
        template: Option<&medanchor_clinical::TemplateRef>,
        plaintext: &[u8],
        now_ms: u64,
    ) -> Result<RecordTerms> {
        let (created_ms, author) = if version == 1 {
            (now_ms, author.to_string())
        } else {
            let first = self.db.record(id, 1)?.ok_or_else(|| Error::internal("a record without version 1"))?;
            (first.created_ms, first.author)
        };
        let mut terms = RecordTerms { created_ms, author, diagnoses: Vec::new(), medications: Vec::new() };
        if let Some(reference) = template {
            let registry = self.registry();
            if let (Ok(t), Ok(content)) = (registry.get(reference), serde_json::from_slice::<Value>(plaintext)) {
                let found = t.search_terms(&content);
                terms.diagnoses = found.diagnoses;
                terms.medications = found.medications;
            }
        }
        Ok(terms)
    }

    /// Adds a record's index entries to `batch` (the batch that stores its
    /// version).
    pub(crate) fn index_record(
        &self,
        batch: &mut WriteBatch,
        id: &[u8; 16],
        patient: &str,
        record_type: RecordType,
        terms: &RecordTerms,
    ) -> Result<()> {
        let name = self.patient_name(patient)?;
        let doc = record_doc(id, patient, record_type, terms, name.as_deref());
        let keys = entries(&self.search.tokens, &doc);
        self.db.replace_doc(batch, Scope::Records, id, &keys)?;
        Ok(())
    }

    /// Adds a patient's index entries to `batch` (the profile's batch),
    /// and replaces the name entries of their records.
    pub(crate) fn index_patient(&self, batch: &mut WriteBatch, patient: &str, profile: &Value) -> Result<()> {
        let text = |f: &str| profile.get(f).and_then(Value::as_str).map(str::to_string);
        let mut terms = Vec::new();
        for (field, member) in [(Field::Name, "full_name"), (Field::Phone, "phone"), (Field::BloodGroup, "blood_type")]
        {
            if let Some(t) = text(member) {
                terms.push((field, t));
            }
        }
        let doc = Doc { scope: Scope::Patients, id: patient.as_bytes().to_vec(), sort: 0, terms };
        let key = &self.search.tokens;
        self.db.replace_doc(batch, Scope::Patients, patient.as_bytes(), &entries(key, &doc))?;
        // The patient's records: every key of their `Patient` token.
        let name = text("full_name");
        let Some(prefix) = key.query_prefixes(Field::Patient, patient).into_iter().next() else { return Ok(()) };
        let store = IndexStore::new(&self.db);
        let mut from = prefix.to_vec();
        let before = [&prefix[..], &[0xff; 9]].concat();
        while let Some(k) = store.seek(&from, &before).map_err(Error::internal)? {
            let Some(position) = position_of(&k) else { break };
            let named = Doc {
                scope: Scope::Records,
                id: position.id.clone(),
                sort: position.sort,
                terms: name.iter().map(|n| (Field::PatientName, n.clone())).collect(),
            };
            let mut keys: Vec<Vec<u8>> = self
                .db
                .doc_keys(Scope::Records, &position.id)?
                .into_iter()
                .filter(|k| field_of(k) != Some(Field::PatientName))
                .collect();
            keys.extend(entries_of(key, &named, Field::PatientName));
            keys.sort();
            self.db.replace_doc(batch, Scope::Records, &position.id, &keys)?;
            from = [k.as_slice(), &[0]].concat();
        }
        Ok(())
    }

    /// The patient's name from their current profile (decrypted), if any.
    fn patient_name(&self, patient: &str) -> Result<Option<String>> {
        Ok(self.open_profile(patient)?.and_then(|(_, p)| p.get("full_name").and_then(Value::as_str).map(String::from)))
    }

    /// Indexes every stored record and profile once (a database written
    /// before the index existed), then marks the index complete.
    pub(crate) fn ensure_search_index(&self) -> Result<()> {
        if self.db.get(Cf::Meta, INDEXED_META_KEY)?.is_some() {
            return Ok(());
        }
        let mut indexed = 0usize;
        // Profiles first: records take their patient's name from them.
        for meta in self.db.current_profiles()? {
            if let Some((_, content)) = self.open_profile(&meta.patient)? {
                let mut batch = self.db.batch();
                self.index_patient(&mut batch, &meta.patient, &content)?;
                self.db.write(batch)?;
                indexed += 1;
            }
        }
        let mut latest: Option<RecordMeta> = None;
        let mut flush = |m: RecordMeta| -> Result<()> {
            let plaintext = self.open_version(&m)?;
            let author: Principal = m.author.parse().map_err(Error::internal)?;
            let terms =
                self.record_terms(&m.record_id, m.version, &author, m.template.as_ref(), &plaintext, m.created_ms)?;
            let record_type = crate::records::parse_record_type(&m.record_type)?;
            let mut batch = self.db.batch();
            self.index_record(&mut batch, &m.record_id, &m.patient, record_type, &terms)?;
            self.db.write(batch)?;
            indexed += 1;
            Ok(())
        };
        for (_, v) in self.db.scan(Cf::Records, &[])? {
            let m: RecordMeta = serde_json::from_slice(&v).map_err(|e| Error::internal(format!("record meta: {e}")))?;
            match &latest {
                Some(l) if l.record_id != m.record_id => {
                    if let Some(l) = latest.replace(m) {
                        flush(l)?;
                    }
                }
                _ => latest = Some(m),
            }
        }
        if let Some(l) = latest {
            flush(l)?;
        }
        let mut batch = self.db.batch();
        batch.put_cf(self.db.cf(Cf::Meta), INDEXED_META_KEY, b"1");
        self.db.write(batch)?;
        if indexed > 0 {
            tracing::info!(documents = indexed, "search index built for data stored before it existed");
        }
        Ok(())
    }

    /// A stored version's plaintext.
    pub(crate) fn open_version(&self, meta: &RecordMeta) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let blob = self
            .blobs
            .get(&meta.data_hash)?
            .ok_or_else(|| Error::internal(format!("blob {} is missing", meta.data_hash)))?;
        let sealed = Sealed {
            blob,
            wrapped_key: hex::decode(&meta.wrapped_key).map_err(Error::internal)?,
            kek_version: meta.kek_version,
        };
        let binding = Binding {
            tenant: &self.config.tenant,
            patient: &meta.patient,
            record_id: &meta.record_id,
            version: meta.version,
        };
        self.keyring.read().unwrap_or_else(|p| p.into_inner()).open_sealed(&binding, &sealed).map_err(|e| match e {
            // The ciphertext or its wrapped key changed at rest.
            crate::envelope::EnvelopeError::Tampered => Error::Integrity(e.to_string()),
            e => Error::internal(e),
        })
    }
}

fn record_doc(id: &[u8; 16], patient: &str, record_type: RecordType, t: &RecordTerms, name: Option<&str>) -> Doc {
    let mut terms = vec![
        (Field::Patient, patient.to_string()),
        (Field::Provider, t.author.clone()),
        (Field::RecordType, record_type.name().to_string()),
    ];
    terms.extend(t.diagnoses.iter().map(|d| (Field::Diagnosis, d.clone())));
    terms.extend(t.medications.iter().map(|m| (Field::Medication, m.clone())));
    terms.extend(name.map(|n| (Field::PatientName, n.to_string())));
    Doc { scope: Scope::Records, id: id.to_vec(), sort: record_sort(t.created_ms), terms }
}

/// A record search.
#[derive(Debug, Clone, Default)]
pub struct RecordSearch {
    /// Words of the patient's name, each matching the start of a word.
    pub patient_name: Option<String>,
    /// An ICD-10-CM code.
    pub diagnosis: Option<String>,
    /// Words of a medication's name.
    pub medication: Option<String>,
    /// The provider who wrote the record.
    pub provider: Option<Principal>,
    /// The patient.
    pub patient: Option<Principal>,
    /// The record type.
    pub record_type: Option<RecordType>,
    /// Written at or after (unix ms).
    pub from_ms: Option<u64>,
    /// Written at or before (unix ms).
    pub to_ms: Option<u64>,
    /// Results per page.
    pub limit: Option<usize>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A patient search.
#[derive(Debug, Clone, Default)]
pub struct PatientSearch {
    /// Words of the name, each matching the start of a word.
    pub name: Option<String>,
    /// A phone number (its digits).
    pub phone: Option<String>,
    /// A blood group.
    pub blood_group: Option<String>,
    /// Results per page.
    pub limit: Option<usize>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A matched text and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlight {
    /// `patient_name`, `diagnosis`, `medication`, `name`, `phone`, `blood_group`.
    pub field: &'static str,
    /// The text, as the caller may read it.
    pub text: String,
    /// Byte ranges of the matches in `text`.
    pub ranges: Vec<std::ops::Range<usize>>,
}

/// A record found.
#[derive(Debug, Clone)]
pub struct RecordHit {
    /// Its current version's metadata.
    pub meta: RecordMeta,
    /// What matched.
    pub highlights: Vec<Highlight>,
}

/// A patient found.
#[derive(Debug, Clone)]
pub struct PatientHit {
    /// The patient.
    pub patient: String,
    /// What matched.
    pub highlights: Vec<Highlight>,
}

/// A page.
#[derive(Debug, Clone)]
pub struct Hits<T> {
    /// The results.
    pub items: Vec<T>,
    /// Where the next page starts, when there may be one.
    pub next_cursor: Option<String>,
}

fn limit_of(limit: Option<usize>) -> Result<usize> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Error::bad("invalid-limit", format!("limit must be from 1 to {MAX_LIMIT}"))),
    }
}

fn search_error(e: SearchError) -> Error {
    match e {
        SearchError::Store(s) => Error::internal(s),
        SearchError::Empty => Error::bad("search-empty", e.to_string()),
        SearchError::Range => Error::bad("invalid-range", e.to_string()),
        other => Error::bad("invalid-search", other.to_string()),
    }
}

/// What binds a cursor: the caller and the query's criteria and range.
fn cursor_aad(who: &Principal, scope: Scope, criteria: &[(Field, String)], from: u64, to: u64) -> Vec<u8> {
    let mut aad = format!("{}\0{}\0{from}\0{to}", who, scope as u8).into_bytes();
    for (f, t) in criteria {
        aad.push(0);
        aad.push(*f as u8);
        aad.extend_from_slice(t.as_bytes());
    }
    aad
}

impl Service {
    /// Records matching every criterion that `caller` may read, newest
    /// first, a page at a time.
    pub async fn search_records(&self, caller: &Caller, q: RecordSearch) -> Result<Hits<RecordHit>> {
        let who = caller.require()?.clone();
        let limit = limit_of(q.limit)?;
        let mut criteria = Vec::new();
        let mut add = |f: Field, v: Option<String>| {
            if let Some(v) = v {
                criteria.push((f, v));
            }
        };
        add(Field::PatientName, q.patient_name.clone());
        add(Field::Diagnosis, q.diagnosis.clone());
        add(Field::Medication, q.medication.clone());
        add(Field::Provider, q.provider.as_ref().map(|p| p.to_string()));
        add(Field::Patient, q.patient.as_ref().map(|p| p.to_string()));
        add(Field::RecordType, q.record_type.map(|t| t.name().to_string()));
        let (sort_from, sort_to) = (record_sort(q.to_ms.unwrap_or(u64::MAX)), record_sort(q.from_ms.unwrap_or(0)));
        let aad = cursor_aad(&who, Scope::Records, &criteria, sort_from, sort_to);
        let after = q.cursor.as_deref().map(|c| self.search.open(&aad, c)).transpose()?;
        let by_name = q.patient_name.is_some();
        let mut entry = caller.entry(self.role_of(&who)?, "record.search");
        let (s2, w2) = (self.clone(), who.clone());
        let query =
            Query { scope: Scope::Records, criteria, sort_from, sort_to, after, limit, max_examined: MAX_EXAMINED };
        let q2 = query.clone();
        let found = tokio::task::spawn_blocking(move || {
            let store = IndexStore::new(&s2.db);
            let mut metas = Vec::new();
            let found = medanchor_clinical::search::search(&s2.search.tokens, &store, &q2, |p| {
                match s2.readable_record(&w2, p, by_name) {
                    Some(meta) => {
                        metas.push(meta);
                        true
                    }
                    None => false,
                }
            })
            .map_err(search_error)?;
            Ok::<_, Error>((found, metas))
        })
        .await
        .map_err(Error::internal)?;
        let (found, metas) = match found {
            Ok(f) => f,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        let mut items = Vec::new();
        for meta in metas {
            let highlights = self.record_highlights(&meta, &query, by_name)?;
            items.push(RecordHit { meta, highlights });
        }
        let next_cursor = found.next.as_ref().map(|p| self.search.seal(&aad, p));
        self.audit_hits(&mut entry, items.iter().map(|h| h.meta.patient.clone())).await?;
        Ok(Hits { items, next_cursor })
    }

    /// The record at `p` if `who` may read it now (and, for a name
    /// search, the patient's basic information).
    fn readable_record(&self, who: &Principal, p: &Position, by_name: bool) -> Option<RecordMeta> {
        let id = RecordId(p.id.as_slice().try_into().ok()?);
        let meta = self.current(&id).ok()?;
        self.authorize_on_record(Operation::Read, &id, &meta, who).ok()?;
        if by_name && meta.patient != who.to_string() {
            let patient: Principal = meta.patient.parse().ok()?;
            match self.authorize_at(Operation::Read, &patient, who, DataType::BasicInfo) {
                Ok(AccessMethod::Emergency) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        Some(meta)
    }

    fn record_highlights(&self, meta: &RecordMeta, query: &Query, by_name: bool) -> Result<Vec<Highlight>> {
        let mut out = Vec::new();
        let wanted = |f: Field| query.criteria.iter().find(|(c, _)| *c == f).map(|(_, t)| t.clone());
        if let (true, Some(q)) = (by_name, wanted(Field::PatientName)) {
            if let Some(name) = self.patient_name(&meta.patient)? {
                out.push(Highlight {
                    field: "patient_name",
                    ranges: highlight(Field::PatientName, &name, &q),
                    text: name,
                });
            }
        }
        let (dq, mq) = (wanted(Field::Diagnosis), wanted(Field::Medication));
        if (dq.is_some() || mq.is_some()) && meta.template.is_some() {
            let plaintext = self.open_version(meta)?;
            let content: Value = serde_json::from_slice(&plaintext).unwrap_or(Value::Null);
            let registry = self.registry();
            if let Some(t) = meta.template.as_ref().and_then(|r| registry.get(r).ok()) {
                let terms = t.search_terms(&content);
                for (field, name, q, list) in [
                    (Field::Diagnosis, "diagnosis", dq, terms.diagnoses),
                    (Field::Medication, "medication", mq, terms.medications),
                ] {
                    let Some(q) = q else { continue };
                    for text in list {
                        let ranges = highlight(field, &text, &q);
                        if !ranges.is_empty() {
                            out.push(Highlight { field: name, text, ranges });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Patients matching every criterion whose searched fields `caller`
    /// may read, a page at a time.
    pub async fn search_patients(&self, caller: &Caller, q: PatientSearch) -> Result<Hits<PatientHit>> {
        let who = caller.require()?.clone();
        let limit = limit_of(q.limit)?;
        let mut criteria = Vec::new();
        for (f, v) in [(Field::Name, &q.name), (Field::Phone, &q.phone), (Field::BloodGroup, &q.blood_group)] {
            if let Some(v) = v {
                criteria.push((f, v.clone()));
            }
        }
        let aad = cursor_aad(&who, Scope::Patients, &criteria, 0, u64::MAX);
        let after = q.cursor.as_deref().map(|c| self.search.open(&aad, c)).transpose()?;
        let types: Vec<DataType> = criteria
            .iter()
            .map(|(f, _)| if *f == Field::BloodGroup { DataType::MedicalHistory } else { DataType::BasicInfo })
            .collect();
        let mut entry = caller.entry(self.role_of(&who)?, "patient.search");
        let query = Query {
            scope: Scope::Patients,
            criteria,
            sort_from: 0,
            sort_to: u64::MAX,
            after,
            limit,
            max_examined: MAX_EXAMINED,
        };
        let (s2, w2, q2) = (self.clone(), who.clone(), query.clone());
        let found = tokio::task::spawn_blocking(move || {
            let store = IndexStore::new(&s2.db);
            medanchor_clinical::search::search(&s2.search.tokens, &store, &q2, |p| s2.readable_patient(&w2, p, &types))
                .map_err(search_error)
        })
        .await
        .map_err(Error::internal)?;
        let found = match found {
            Ok(f) => f,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        let mut items = Vec::new();
        for p in &found.results {
            let patient = String::from_utf8_lossy(&p.id).into_owned();
            let profile = self.open_profile(&patient)?.map(|(_, c)| c).unwrap_or(Value::Null);
            let mut highlights = Vec::new();
            for (field, member, name) in [
                (Field::Name, "full_name", "name"),
                (Field::Phone, "phone", "phone"),
                (Field::BloodGroup, "blood_type", "blood_group"),
            ] {
                let (Some(q), Some(text)) = (
                    query.criteria.iter().find(|(c, _)| *c == field).map(|(_, t)| t),
                    profile.get(member).and_then(Value::as_str),
                ) else {
                    continue;
                };
                highlights.push(Highlight { field: name, text: text.to_string(), ranges: highlight(field, text, q) });
            }
            items.push(PatientHit { patient, highlights });
        }
        let next_cursor = found.next.as_ref().map(|p| self.search.seal(&aad, p));
        self.audit_hits(&mut entry, items.iter().map(|h| h.patient.clone())).await?;
        Ok(Hits { items, next_cursor })
    }

    /// Whether `who` may read every searched field of the patient at `p`:
    /// the patient; else each field's data type by consent (an emergency
    /// override releases the blood group only, as it does in the profile).
    fn readable_patient(&self, who: &Principal, p: &Position, types: &[DataType]) -> bool {
        let Ok(patient) = std::str::from_utf8(&p.id).unwrap_or("").parse::<Principal>() else { return false };
        if patient == *who {
            return true;
        }
        types.iter().all(|dt| match self.authorize_at(Operation::Read, &patient, who, *dt) {
            Ok(AccessMethod::Emergency) => *dt == DataType::MedicalHistory,
            Ok(_) => true,
            Err(_) => false,
        })
    }

    /// The search's audit entries: one for the search, one per patient
    /// whose data it returned.
    async fn audit_hits(
        &self,
        entry: &mut crate::audit::AuditEntry,
        patients: impl Iterator<Item = String>,
    ) -> Result<()> {
        let mut seen: Vec<String> = Vec::new();
        for p in patients {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        entry.reason = Some(format!("{} patients in the results", seen.len()));
        self.audited(entry.clone(), Ok(())).await?;
        for p in seen {
            let mut e = entry.clone();
            e.patient = Some(p);
            e.reason = None;
            e.method = Some("search".into());
            self.audited(e, Ok(())).await?;
        }
        Ok(())
    }
}
