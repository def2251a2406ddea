//! The blind index on a real RocksDB: every query equals a brute-force
//! filter over the plaintext documents (randomized corpora, paged through
//! with cursors, with authorization callbacks), the index files hold none
//! of the plaintext, and normalisation, token separation, date bounds and
//! highlighting do what they say.

use std::path::Path;

use medanchor_clinical::search::{
    entries, highlight, normalize, record_sort, search, Doc, Field, Found, OrderedKeys, Position, Query, Scope,
    SearchError, SearchKey,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The index over a RocksDB.
struct Index {
    db: rocksdb::DB,
}

impl Index {
    fn open(path: &Path) -> Index {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        Index { db: rocksdb::DB::open(&o, path).unwrap_or_else(|e| panic!("open: {e}")) }
    }

    fn add(&self, key: &SearchKey, docs: &[Doc]) {
        let mut batch = rocksdb::WriteBatch::default();
        for d in docs {
            for k in entries(key, d) {
                batch.put(k, []);
            }
        }
        self.db.write(batch).unwrap_or_else(|e| panic!("write: {e}"));
    }
}

impl OrderedKeys for Index {
    type Error = rocksdb::Error;

    fn seek(&self, from: &[u8], before: &[u8]) -> Result<Option<Vec<u8>>, rocksdb::Error> {
        let mut it = self.db.raw_iterator();
        it.seek(from);
        if !it.valid() {
            return it.status().map(|()| None);
        }
        Ok(it.key().filter(|k| *k < before).map(<[u8]>::to_vec))
    }
}

const FIRST: [&str; 8] = ["María", "Mario", "Marta", "Ana", "Anabel", "José", "Jo", "Zoë"];
const LAST: [&str; 6] = ["García", "Garcia-Smith", "Gómez", "Smith", "Smithers", "O'Neil"];
const CODES: [&str; 6] = ["E11.9", "I10", "J45.909", "E11.65", "Z00.00", "I10.1"];
const MEDS: [&str; 6] =
    ["Metformin", "Metformin XR", "Salbutamol inhaler", "Lisinopril", "Insulin glargine", "Aspirin"];
const TYPES: [&str; 4] = ["lab-results", "vital-signs", "prescriptions", "imaging"];
const PROVIDERS: [&str; 3] = ["ST1PROVIDERA", "ST1PROVIDERB", "ST1PROVIDERC"];

fn pick<'a>(rng: &mut ChaCha8Rng, from: &[&'a str]) -> &'a str {
    from[rng.gen_range(0..from.len())]
}

fn corpus(rng: &mut ChaCha8Rng, n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| {
            let mut terms = vec![
                (Field::PatientName, format!("{} {}", pick(rng, &FIRST), pick(rng, &LAST))),
                (Field::RecordType, pick(rng, &TYPES).to_string()),
                (Field::Provider, pick(rng, &PROVIDERS).to_string()),
            ];
            for _ in 0..rng.gen_range(0..3) {
                terms.push((Field::Diagnosis, pick(rng, &CODES).to_string()));
            }
            for _ in 0..rng.gen_range(0..3) {
                terms.push((Field::Medication, pick(rng, &MEDS).to_string()));
            }
            let mut id = vec![0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            id[8..].copy_from_slice(&rng.gen::<[u8; 8]>());
            // Few distinct times, so many documents share a sort value.
            Doc { scope: Scope::Records, id, sort: record_sort(1_000 + rng.gen_range(0..40) * 1_000), terms }
        })
        .collect()
}

/// What a criterion asks, decided from the plaintext alone.
fn matches(doc: &Doc, field: Field, text: &str) -> bool {
    normalize(field, text).iter().all(|q| {
        doc.terms.iter().filter(|(f, _)| *f == field).any(|(_, t)| {
            normalize(field, t).iter().any(|w| if field.by_prefix() { w.starts_with(q.as_str()) } else { w == q })
        })
    })
}

fn random_criterion(rng: &mut ChaCha8Rng) -> (Field, String) {
    match rng.gen_range(0..6) {
        0 => {
            let name = pick(rng, &FIRST);
            let cut = rng.gen_range(1..=name.chars().count());
            (Field::PatientName, name.chars().take(cut).collect())
        }
        1 => {
            let (f, l) = (pick(rng, &FIRST), pick(rng, &LAST));
            let l: String = l.chars().take(rng.gen_range(1..=3)).collect();
            (Field::PatientName, format!("{} {l}", f.to_uppercase()))
        }
        2 => (Field::Diagnosis, pick(rng, &CODES).to_string()),
        3 => (Field::Medication, pick(rng, &MEDS).split(' ').next().unwrap_or("x").to_lowercase()),
        4 => (Field::RecordType, pick(rng, &TYPES).to_uppercase()),
        _ => (Field::Provider, pick(rng, &PROVIDERS).to_string()),
    }
}

fn run_all(key: &SearchKey, index: &Index, query: &Query, accept: &dyn Fn(&Position) -> bool) -> Vec<Position> {
    let mut out = Vec::new();
    let mut q = query.clone();
    for _ in 0..100_000 {
        let Found { results, next, .. } = search(key, index, &q, accept).unwrap_or_else(|e| panic!("{e}"));
        out.extend(results);
        match next {
            Some(n) => q.after = Some(n),
            None => return out,
        }
    }
    panic!("paging never ended");
}

#[test]
fn every_query_equals_a_brute_force_filter_over_the_plaintext() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    for case in 0..12 {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let index = Index::open(dir.path());
        let key = SearchKey::new(rng.gen());
        let n = rng.gen_range(50..500);
        let docs = corpus(&mut rng, n);
        index.add(&key, &docs);
        for _ in 0..40 {
            let criteria: Vec<(Field, String)> =
                (0..rng.gen_range(1..=3)).map(|_| random_criterion(&mut rng)).collect();
            let (a, b) = (rng.gen_range(0..45u64) * 1_000, rng.gen_range(0..45u64) * 1_000);
            let (from_ms, to_ms) = (a.min(b), a.max(b));
            let dated = rng.gen_bool(0.5);
            let (sort_from, sort_to) = if dated { (record_sort(to_ms), record_sort(from_ms)) } else { (0, u64::MAX) };
            let refuse = rng.gen_range(0..4u8);
            let accept = move |p: &Position| refuse == 0 || p.id[15] % 4 != refuse;
            let query = Query {
                scope: Scope::Records,
                criteria: criteria.clone(),
                sort_from,
                sort_to,
                after: None,
                limit: rng.gen_range(1..30),
                max_examined: rng.gen_range(1..60),
            };
            let got = run_all(&key, &index, &query, &accept);
            let mut expected: Vec<Position> = docs
                .iter()
                .filter(|d| criteria.iter().all(|(f, t)| matches(d, *f, t)))
                .filter(|d| (sort_from..=sort_to).contains(&d.sort))
                .map(|d| Position { sort: d.sort, id: d.id.clone() })
                .filter(|p| accept(p))
                .collect();
            expected.sort();
            assert_eq!(got, expected, "case {case}: {criteria:?} dated={dated} {from_ms}..={to_ms}");
        }
    }
}

#[test]
fn the_index_files_hold_none_of_the_plaintext() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let index = Index::open(dir.path());
    let key = SearchKey::new([7; 32]);
    let secrets = [
        (Field::PatientName, "Bartholomew Quistgaard"),
        (Field::Medication, "Hydroxychloroquine"),
        (Field::Diagnosis, "F32.A"),
        (Field::Provider, "ST3PROVIDERSECRET"),
        (Field::RecordType, "mental-health"),
    ];
    let docs: Vec<Doc> = (0..200u8)
        .map(|i| Doc {
            scope: Scope::Records,
            id: vec![i; 16],
            sort: record_sort(u64::from(i)),
            terms: secrets.iter().map(|(f, t)| (*f, t.to_string())).collect(),
        })
        .collect();
    index.add(&key, &docs);
    // A control: plaintext written on purpose must be found by the scan.
    index.db.put(b"control", b"plainly-visible-control").unwrap_or_else(|e| panic!("{e}"));
    index.db.flush().unwrap_or_else(|e| panic!("{e}"));
    index.db.compact_range::<&[u8], &[u8]>(None, None);
    drop(index);
    let mut haystack = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        haystack.extend(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    }
    let found = |needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    assert!(found(b"plainly-visible-control"), "the scan sees plaintext that is there");
    for (field, text) in secrets {
        let mut needles = vec![text.to_string(), text.to_lowercase()];
        needles.extend(normalize(field, text));
        for n in needles.iter().filter(|n| n.len() >= 4) {
            assert!(!found(n.as_bytes()), "{n:?} ({field:?}) is in the index files");
        }
    }
    // And the index still finds them.
    let index = Index::open(dir.path());
    let q = |field, text: &str| Query {
        scope: Scope::Records,
        criteria: vec![(field, text.into())],
        sort_from: 0,
        sort_to: u64::MAX,
        after: None,
        limit: 500,
        max_examined: 500,
    };
    for (field, text) in
        [(Field::PatientName, "barth quist"), (Field::Diagnosis, "f32a"), (Field::Medication, "HYDROXYCHLOROQUINE")]
    {
        let found = search(&key, &index, &q(field, text), |_| true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.results.len(), 200, "{text}");
    }
}

#[test]
fn normalisation_is_what_the_fields_say() {
    let cases: &[(Field, &str, &[&str])] = &[
        (Field::PatientName, "  María-José  GARCÍA ", &["maria", "jose", "garcia"]),
        (Field::Name, "Zoë O'Neil", &["zoe", "o", "neil"]),
        (Field::Diagnosis, "E11.9", &["e119"]),
        (Field::Diagnosis, " e119 ", &["e119"]),
        (Field::Medication, "Insulin glargine (U-100)", &["insulin", "glargine", "u", "100"]),
        (Field::Phone, "+1 (415) 555-0134", &["14155550134"]),
        (Field::BloodGroup, " o - ", &["o-"]),
        (Field::RecordType, "Lab-Results", &["lab-results"]),
        (Field::Provider, " ST1ABC ", &["ST1ABC"]),
        (Field::Diagnosis, "...", &[]),
    ];
    for (field, text, want) in cases {
        assert_eq!(normalize(*field, text), *want, "{field:?} {text:?}");
    }
    let long = "a".repeat(100);
    assert_eq!(normalize(Field::Name, &long), ["a".repeat(32)]);
    assert_eq!(normalize(Field::Name, &"w ".repeat(40)).len(), 16);
}

#[test]
fn tokens_are_separated_by_field_kind_and_tenant() {
    let (a, b) = (SearchKey::new([1; 32]), SearchKey::new([2; 32]));
    let doc =
        |field| Doc { scope: Scope::Records, id: vec![1; 16], sort: 5, terms: vec![(field, "lisinopril".into())] };
    // The same word in two fields, or under two tenants' keys, makes
    // different keys.
    let med = entries(&a, &doc(Field::Medication));
    let name = entries(&a, &doc(Field::PatientName));
    assert!(name.iter().all(|k| !med.contains(k)));
    assert!(entries(&b, &doc(Field::Medication)).iter().all(|k| !med.contains(k)));
    // A name's prefixes: one key per prefix (l, li, …, lisinopril).
    assert_eq!(name.len(), 10);
    // A patients' field on a record is ignored.
    assert!(entries(&a, &doc(Field::Phone)).is_empty());
    // Queries: a field of another scope, nothing to look for, a reversed range.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let index = Index::open(dir.path());
    let q = |criteria: Vec<(Field, String)>, from, to| Query {
        scope: Scope::Records,
        criteria,
        sort_from: from,
        sort_to: to,
        after: None,
        limit: 20,
        max_examined: 100,
    };
    let run = |query: &Query| search(&a, &index, query, |_| true).map(|f| f.results.len());
    assert_eq!(run(&q(vec![(Field::Phone, "555 1234".into())], 0, u64::MAX)), Err(SearchError::Field(Field::Phone)));
    assert_eq!(run(&q(vec![(Field::Diagnosis, "--".into())], 0, u64::MAX)), Err(SearchError::Empty));
    assert_eq!(run(&q(vec![(Field::Diagnosis, "I10".into())], 9, 8)), Err(SearchError::Range));
    let nine = |c: char| (0..9).map(|i| format!("{c}{i}")).collect::<Vec<_>>().join(" ");
    let too_many = vec![(Field::Medication, nine('a')), (Field::PatientName, nine('b'))];
    assert_eq!(run(&q(too_many, 0, u64::MAX)), Err(SearchError::TooManyWords(16)));
}

#[test]
fn date_ranges_are_inclusive_at_both_ends() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let index = Index::open(dir.path());
    let key = SearchKey::new([3; 32]);
    let docs: Vec<Doc> = (0..10u64)
        .map(|t| Doc {
            scope: Scope::Records,
            id: vec![t as u8; 16],
            sort: record_sort(t * 100),
            terms: vec![(Field::Diagnosis, "I10".into())],
        })
        .collect();
    index.add(&key, &docs);
    let between = |from_ms: u64, to_ms: u64| {
        let q = Query {
            scope: Scope::Records,
            criteria: vec![(Field::Diagnosis, "i10".into())],
            sort_from: record_sort(to_ms),
            sort_to: record_sort(from_ms),
            after: None,
            limit: 100,
            max_examined: 100,
        };
        let found = search(&key, &index, &q, |_| true).unwrap_or_else(|e| panic!("{e}"));
        found.results.iter().map(|p| u64::MAX - p.sort).collect::<Vec<_>>()
    };
    assert_eq!(between(200, 500), [500, 400, 300, 200], "newest first, both ends in");
    assert_eq!(between(201, 499), [400, 300]);
    assert_eq!(between(0, 0), [0]);
    assert_eq!(between(950, 2_000), Vec::<u64>::new());
}

#[test]
fn highlights_mark_the_matched_words_of_the_original_text() {
    let cases: &[(Field, &str, &str, &[&str])] = &[
        (Field::PatientName, "María José García", "mar gar", &["María", "García"]),
        (Field::PatientName, "Jo Jones", "jo", &["Jo", "Jones"]),
        (Field::Medication, "Metformin XR 500", "metformin", &["Metformin"]),
        (Field::Medication, "Metformin XR", "metform", &[]),
        (Field::Diagnosis, " E11.9", "e119", &["E11.9"]),
        (Field::Phone, "+1 (415) 555-0134", "14155550134", &["+1 (415) 555-0134"]),
        (Field::Name, "Zoë Smith", "zoe", &["Zoë"]),
    ];
    for (field, text, query, want) in cases {
        let got: Vec<&str> = highlight(*field, text, query).into_iter().map(|r| &text[r]).collect();
        assert_eq!(got, *want, "{field:?} {text:?} {query:?}");
    }
}
