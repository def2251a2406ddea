//! Search without plaintext at rest: blind indexes.
//!
//! A document (a record, a patient) is found by terms — a patient's name,
//! a diagnosis code, a medication, a provider, a record type, a phone
//! number, a blood group. Each term is normalised ([`normalize`]) into
//! words; each word becomes a *blind token*: HMAC-SHA256 under the
//! tenant's [`SearchKey`] of the field, the token's kind and the word,
//! cut to 16 bytes. Name fields index every prefix of every word (so `mar`
//! finds `María`); the others index whole words. Only tokens reach the
//! index: without the key, an index file says which documents share a
//! term, never what the term is.
//!
//! Keys sort, so every query is a set of range reads:
//!
//! ```text
//! scope (1) ‖ field (1) ‖ token (16) ‖ sort (8, big-endian) ‖ id (rest)
//! ```
//!
//! `sort` orders a token's documents: records newest first
//! (`u64::MAX − created_ms`, [`record_sort`]), so a date range is a key
//! range. A query ANDs the tokens of all its criteria; [`search`] walks
//! their ranges together by seeks (a leapfrog join: each range jumps to the
//! largest position any other has reached), so its cost follows the
//! results and the smallest range, never the index. Every candidate goes
//! through the caller's `accept` (the authorization rule) before it
//! counts; a bounded number of candidates is examined per call.
//!
//! The [`Position`] a page ends at is plaintext (a sort value and an id):
//! the service seals it before a caller sees it.
//!
//! Deliberately absent: storage (the caller applies [`entries`] to its own
//! store and implements [`OrderedKeys`] over it), authorization, and what
//! a result shows (the service decrypts what the caller may read, and
//! [`highlight`] marks the matches).

use std::collections::BTreeSet;
use std::ops::Range;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longest word indexed, in characters: longer words (and query words)
/// are cut to this length, the same way on both sides.
pub const MAX_WORD: usize = 32;
/// Most words one term indexes (a longer text is cut).
pub const MAX_WORDS: usize = 16;
/// Length of a blind token.
pub const TOKEN_LEN: usize = 16;
/// Length of a key's prefix before the sort value.
pub const PREFIX_LEN: usize = 2 + TOKEN_LEN;

/// A tenant's search key. Never printed.
#[derive(Clone)]
pub struct SearchKey([u8; 32]);

impl SearchKey {
    /// The key from its bytes (the service derives them per tenant).
    pub fn new(bytes: [u8; 32]) -> SearchKey {
        SearchKey(bytes)
    }
}

impl std::fmt::Debug for SearchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchKey(..)")
    }
}

/// What is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Scope {
    /// Records.
    Records = b'r',
    /// Patients.
    Patients = b'p',
}

/// What a term is. The tag is part of every key and token: stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Field {
    /// A record's patient's name (prefixes of its words).
    PatientName = 1,
    /// An ICD-10-CM code, matched whole (`E11.9` = `e119`).
    Diagnosis = 2,
    /// A medication's name, word by word.
    Medication = 3,
    /// The provider who wrote the record (a principal).
    Provider = 4,
    /// The record type (`lab-results`).
    RecordType = 5,
    /// The record's patient (a principal).
    Patient = 6,
    /// A patient's name (prefixes of its words).
    Name = 16,
    /// A patient's phone number (its digits, whole).
    Phone = 17,
    /// A patient's blood group (`O-`).
    BloodGroup = 18,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 9] = [
        Field::PatientName,
        Field::Diagnosis,
        Field::Medication,
        Field::Provider,
        Field::RecordType,
        Field::Patient,
        Field::Name,
        Field::Phone,
        Field::BloodGroup,
    ];

    /// The scope whose documents carry this field.
    pub fn scope(self) -> Scope {
        if (self as u8) < 16 {
            Scope::Records
        } else {
            Scope::Patients
        }
    }

    /// Whether a query word matches the start of an indexed word (names)
    /// rather than the whole word.
    pub fn by_prefix(self) -> bool {
        matches!(self, Field::PatientName | Field::Name)
    }

    /// The field whose tag is `b`.
    pub fn from_tag(b: u8) -> Option<Field> {
        Field::ALL.into_iter().find(|f| *f as u8 == b)
    }
}

/// Why a query cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// No criterion has a word to look for.
    #[error("a search needs at least one criterion with letters or digits")]
    Empty,
    /// A criterion of another scope's field.
    #[error("{0:?} is not a field of this search")]
    Field(Field),
    /// More words than a query takes.
    #[error("a search takes at most {0} words")]
    TooManyWords(usize),
    /// The range is empty or reversed.
    #[error("the date range ends before it starts")]
    Range,
    /// The store failed.
    #[error("search store: {0}")]
    Store(String),
}

/// Folds the Latin letters with diacritics people type without them.
fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
        'ý' | 'ÿ' => 'y',
        'ś' | 'š' | 'ş' => 's',
        'ź' | 'ż' | 'ž' => 'z',
        'ł' => 'l',
        'ř' => 'r',
        'ť' | 'ţ' => 't',
        'ß' => 's',
        other => other,
    }
}

/// Lowercased, folded words of `text`, each cut to [`MAX_WORD`]
/// characters, at most [`MAX_WORDS`].
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut len = 0;
    let lowered = text.chars().flat_map(char::to_lowercase).map(fold);
    for c in lowered.chain(std::iter::once(' ')) {
        if c.is_alphanumeric() {
            if len < MAX_WORD {
                word.push(c);
                len += 1;
            }
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
            len = 0;
            if out.len() == MAX_WORDS {
                break;
            }
        }
    }
    out
}

/// The words a term of `field` is indexed and matched by: names and
/// medications word by word (lowercase, diacritics folded); a diagnosis
/// code without its dot; a phone number's digits; a blood group, a record
/// type or a principal whole (blood groups and record types
/// case-insensitively).
pub fn normalize(field: Field, text: &str) -> Vec<String> {
    let whole = |t: String| if t.is_empty() { Vec::new() } else { vec![t] };
    match field {
        Field::PatientName | Field::Name | Field::Medication => words(text),
        Field::Diagnosis => whole(text.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase()),
        Field::Phone => whole(text.chars().filter(char::is_ascii_digit).collect()),
        Field::BloodGroup | Field::RecordType => {
            whole(text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase())
        }
        Field::Provider | Field::Patient => whole(text.trim().to_string()),
    }
}

impl SearchKey {
    /// The blind token of `word` in `field`; `prefix` for a prefix token.
    fn token(&self, field: Field, prefix: bool, word: &str) -> [u8; TOKEN_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("any length"));
        mac.update(&[field.scope() as u8, field as u8, u8::from(prefix), 0]);
        mac.update(word.as_bytes());
        let mut out = [0u8; TOKEN_LEN];
        out.copy_from_slice(&mac.finalize().into_bytes()[..TOKEN_LEN]);
        out
    }

    /// The key prefix of one token's range.
    fn prefix(&self, field: Field, prefix: bool, word: &str) -> [u8; PREFIX_LEN] {
        let mut k = [0u8; PREFIX_LEN];
        k[0] = field.scope() as u8;
        k[1] = field as u8;
        k[2..].copy_from_slice(&self.token(field, prefix, word));
        k
    }

    /// The range prefixes a term is matched by in a query: one per word
    /// (prefix tokens for name fields).
    pub fn query_prefixes(&self, field: Field, text: &str) -> Vec<[u8; PREFIX_LEN]> {
        normalize(field, text).iter().map(|w| self.prefix(field, field.by_prefix(), w)).collect()
    }
}

/// A document to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// Records or patients.
    pub scope: Scope,
    /// Its id (a record's 16 bytes, a patient's principal): the keys' tail.
    pub id: Vec<u8>,
    /// Its place in every range ([`record_sort`] for records).
    pub sort: u64,
    /// What it is found by (fields of its scope).
    pub terms: Vec<(Field, String)>,
}

/// A record's sort value: newest first.
pub fn record_sort(created_ms: u64) -> u64 {
    u64::MAX - created_ms
}

/// The keys `doc` is indexed under, sorted and without repeats (values
/// are empty). Terms of another scope's fields are skipped.
pub fn entries(key: &SearchKey, doc: &Doc) -> Vec<Vec<u8>> {
    let mut out = BTreeSet::new();
    for (field, text) in doc.terms.iter().filter(|(f, _)| f.scope() == doc.scope) {
        for word in normalize(*field, text) {
            if field.by_prefix() {
                // Every prefix, by characters: `m`, `ma`, … `maría`.
                let ends = word.char_indices().map(|(i, c)| i + c.len_utf8());
                for end in ends {
                    out.insert(full_key(&key.prefix(*field, true, &word[..end]), doc.sort, &doc.id));
                }
            } else {
                out.insert(full_key(&key.prefix(*field, false, &word), doc.sort, &doc.id));
            }
        }
    }
    out.into_iter().collect()
}

/// The entries of `field` only (a patient's name changed: the records'
/// name entries are replaced, the rest stay).
pub fn entries_of(key: &SearchKey, doc: &Doc, field: Field) -> Vec<Vec<u8>> {
    entries(key, doc).into_iter().filter(|k| k[1] == field as u8).collect()
}

/// Which field an index key belongs to.
pub fn field_of(key: &[u8]) -> Option<Field> {
    key.get(1).copied().and_then(Field::from_tag)
}

/// The (sort, id) tail of an index key.
pub fn position_of(key: &[u8]) -> Option<Position> {
    let rest = key.get(PREFIX_LEN..)?;
    let sort = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some(Position { sort, id: rest[8..].to_vec() })
}

fn full_key(prefix: &[u8], sort: u64, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8 + id.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(&sort.to_be_bytes());
    k.extend_from_slice(id);
    k
}

/// A place in every range of a query: a document's sort value and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The sort value.
    pub sort: u64,
    /// The id.
    pub id: Vec<u8>,
}

impl Position {
    fn tail(&self) -> Vec<u8> {
        let mut t = self.sort.to_be_bytes().to_vec();
        t.extend_from_slice(&self.id);
        t
    }

    /// The bytes of a position (to seal into a cursor).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.tail()
    }

    /// A position from [`Position::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Option<Position> {
        let sort = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        Some(Position { sort, id: b[8..].to_vec() })
    }
}

/// A store of sorted keys.
pub trait OrderedKeys {
    /// The store's error.
    type Error: std::fmt::Display;

    /// The first key at or after `from` and before `before`, if any.
    fn seek(&self, from: &[u8], before: &[u8]) -> Result<Option<Vec<u8>>, Self::Error>;
}

/// One query.
#[derive(Debug, Clone)]
pub struct Query {
    /// What is searched.
    pub scope: Scope,
    /// (field, text) pairs, all of which a result matches.
    pub criteria: Vec<(Field, String)>,
    /// Sort values from (inclusive) …
    pub sort_from: u64,
    /// … to (inclusive). A record date range `[from_ms, to_ms]` is
    /// `record_sort(to_ms) ..= record_sort(from_ms)`.
    pub sort_to: u64,
    /// Resume after this position (the previous page's end).
    pub after: Option<Position>,
    /// Results wanted.
    pub limit: usize,
    /// Candidates examined at most (accepted or not).
    pub max_examined: usize,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Accepted documents, in key order.
    pub results: Vec<Position>,
    /// Where the next page starts after, when the ranges were not
    /// exhausted.
    pub next: Option<Position>,
    /// Candidates examined (for tests and metrics).
    pub examined: usize,
}

/// Most words in one query (all criteria).
pub const MAX_QUERY_WORDS: usize = 16;

/// Runs `query` over `store`: the documents matching every criterion,
/// each accepted by `accept`, in key order (records: newest first).
pub fn search<S: OrderedKeys>(
    key: &SearchKey,
    store: &S,
    query: &Query,
    mut accept: impl FnMut(&Position) -> bool,
) -> Result<Found, SearchError> {
    if query.sort_from > query.sort_to {
        return Err(SearchError::Range);
    }
    let mut prefixes: Vec<[u8; PREFIX_LEN]> = Vec::new();
    for (field, text) in &query.criteria {
        if field.scope() != query.scope {
            return Err(SearchError::Field(*field));
        }
        for p in key.query_prefixes(*field, text) {
            if !prefixes.contains(&p) {
                prefixes.push(p);
            }
        }
    }
    if prefixes.is_empty() {
        return Err(SearchError::Empty);
    }
    if prefixes.len() > MAX_QUERY_WORDS {
        return Err(SearchError::TooManyWords(MAX_QUERY_WORDS));
    }
    // The candidate: the smallest tail every range may still hold.
    let mut tail = match &query.after {
        Some(p) if p.sort >= query.sort_from => successor(p.tail()),
        _ => query.sort_from.to_be_bytes().to_vec(),
    };
    // Tails end before the first tail of `sort_to + 1`.
    let end = query.sort_to.checked_add(1).map(|s| s.to_be_bytes().to_vec());
    let mut found = Found { results: Vec::new(), next: None, examined: 0 };
    let store_err = |e: S::Error| SearchError::Store(e.to_string());
    'candidates: loop {
        if found.results.len() >= query.limit || found.examined >= query.max_examined {
            // Stopped early: the next page resumes after the last
            // candidate examined (which `tail` is the successor of).
            found.next = found.next.take().or_else(|| predecessor_position(&tail));
            return Ok(found);
        }
        // One round: every range seeks to the candidate; a range ahead of
        // it moves the candidate and restarts the round.
        let mut agreed = 0;
        let mut i = 0;
        while agreed < prefixes.len() {
            let prefix = &prefixes[i % prefixes.len()];
            let mut from = prefix.to_vec();
            from.extend_from_slice(&tail);
            let before = match &end {
                Some(e) => [prefix.as_slice(), e].concat(),
                None => successor_prefix(prefix),
            };
            let Some(k) = store.seek(&from, &before).map_err(store_err)? else {
                // A range is exhausted: nothing more matches.
                found.next = None;
                return Ok(found);
            };
            let t = k[PREFIX_LEN..].to_vec();
            if t == tail {
                agreed += 1;
            } else {
                tail = t;
                agreed = 1;
            }
            i += 1;
        }
        let position = Position::from_bytes(&tail).ok_or_else(|| SearchError::Store("a short key".into()))?;
        found.examined += 1;
        if accept(&position) {
            found.results.push(position.clone());
        }
        found.next = Some(position);
        tail = successor(std::mem::take(&mut tail));
        continue 'candidates;
    }
}

/// The smallest byte string after `b`.
fn successor(mut b: Vec<u8>) -> Vec<u8> {
    b.push(0);
    b
}

/// The first key after every key with `prefix`.
fn successor_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < u8::MAX {
            p.push(last + 1);
            return p;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

/// The position a successor tail was made from (`tail` = position ‖ 0).
fn predecessor_position(tail: &[u8]) -> Option<Position> {
    let t = tail.strip_suffix(&[0])?;
    Position::from_bytes(t)
}

/// The byte ranges of `text` a query text matched in `field`: each word
/// of `text` equal to a query word (or, for name fields, starting with
/// one), merged, on character boundaries of the original text.
pub fn highlight(field: Field, text: &str, query_text: &str) -> Vec<Range<usize>> {
    let wanted = normalize(field, query_text);
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut ranges: Vec<Range<usize>> = Vec::new();
    match field {
        Field::PatientName | Field::Name | Field::Medication => {
            // Walk the original text's words, normalising each alone.
            let mut start = None;
            for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
                let word_char = c.is_alphanumeric();
                match (start, word_char) {
                    (None, true) => start = Some(i),
                    (Some(s), false) => {
                        let w = words(&text[s..i]).into_iter().next().unwrap_or_default();
                        let hit =
                            wanted.iter().any(|q| if field.by_prefix() { w.starts_with(q.as_str()) } else { w == *q });
                        if hit {
                            ranges.push(s..i);
                        }
                        start = None;
                    }
                    _ => {}
                }
            }
        }
        // Whole-value fields: the whole (trimmed) text when it matches.
        _ => {
            if normalize(field, text) == wanted {
                let start = text.len() - text.trim_start().len();
                ranges.push(start..text.trim_end().len());
            }
        }
    }
    ranges
}
