//! The credential document: a valid one round-trips through its canonical
//! bytes, every field's violation is named, expiry is judged per item on
//! the UTC day.

use base64::Engine;
use medanchor_clinical::credentials::{utc_date, Credential, MAX_ENTRIES};
use medanchor_clinical::Problem;
use serde_json::{json, Value};

const PNG_1X1: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn valid() -> Value {
    json!({
        "name": "  Dr. Ada Okafor ",
        "license": { "number": "MD-448812", "issuer": "Medical Board of California", "expires": "2028-06-30" },
        "specializations": ["Cardiology", "cardiology", " Internal medicine", ""],
        "certifications": [
            { "name": "ABIM Cardiovascular Disease", "issuer": "ABIM", "expires": "2027-12-31" },
            { "name": "ACLS", "issuer": "American Heart Association", "expires": "2026-12-04" }
        ],
        "medical_school": { "institution": "Johns Hopkins School of Medicine", "year": 2009 },
        "residency": { "institution": "Massachusetts General Hospital" },
        "years_of_experience": 14,
        "expertise": ["Heart failure", "Echocardiography"],
        "affiliations": [{ "hospital": "St. Mary's", "department": "Cardiology" }],
        "photo": { "media_type": "image/png", "data": base64::engine::general_purpose::STANDARD.encode(PNG_1X1) },
        "contact": { "email": "a.okafor@stmarys.example", "phone": "+1 (415) 555-0134" }
    })
}

fn parse(v: &Value) -> Result<Credential, Vec<(String, Problem)>> {
    Credential::parse(&serde_json::to_vec(v).unwrap_or_default())
        .map_err(|errs| errs.into_iter().map(|e| (e.path, e.problem)).collect())
}

#[test]
fn a_valid_document_normalises_and_round_trips_through_its_canonical_bytes() {
    let c = parse(&valid()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(c.name, "Dr. Ada Okafor");
    assert_eq!(c.specializations, ["Cardiology", "Internal medicine"], "trimmed, blanks and repeats dropped");
    let bytes = c.canonical();
    let again = Credential::parse(&bytes).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(again, c);
    assert_eq!(again.canonical(), bytes, "the canonical form is a fixed point");
    // Member order in the input does not change the commitment.
    let mut reordered = serde_json::Map::new();
    let original = valid();
    let obj = original.as_object().unwrap_or_else(|| panic!("object"));
    for k in obj.keys().rev() {
        reordered.insert(k.clone(), obj[k].clone());
    }
    assert_eq!(parse(&Value::Object(reordered)).map(|c| c.canonical()), Ok(bytes));
    // The minimum: a name and a licence.
    let min = json!({ "name": "A", "license": { "number": "1", "issuer": "B" } });
    assert!(parse(&min).is_ok());
}

#[test]
fn every_failing_field_is_named() {
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit, &[&str])] = &[
        ("blank name", |v| v["name"] = json!("  "), &["name"]),
        ("long licence number", |v| v["license"]["number"] = json!("9".repeat(201)), &["license.number"]),
        ("bad licence date", |v| v["license"]["expires"] = json!("2028-02-30"), &["license.expires"]),
        (
            "certification without issuer, bad date",
            |v| v["certifications"][1] = json!({ "name": "BLS", "issuer": " ", "expires": "soon" }),
            &["certifications[1].issuer", "certifications[1].expires"],
        ),
        ("school year", |v| v["medical_school"]["year"] = json!(1850), &["medical_school.year"]),
        ("residency blank", |v| v["residency"]["institution"] = json!(""), &["residency.institution"]),
        ("experience", |v| v["years_of_experience"] = json!(81), &["years_of_experience"]),
        ("affiliation", |v| v["affiliations"][0]["hospital"] = json!(""), &["affiliations[0].hospital"]),
        ("email", |v| v["contact"]["email"] = json!("nobody"), &["contact.email"]),
        ("phone", |v| v["contact"]["phone"] = json!("12"), &["contact.phone"]),
        ("photo type", |v| v["photo"]["media_type"] = json!("image/gif"), &["photo"]),
        ("photo bytes", |v| v["photo"]["media_type"] = json!("image/jpeg"), &["photo"]),
        ("photo base64", |v| v["photo"]["data"] = json!("not base64!"), &["photo"]),
        (
            "too many",
            |v| v["expertise"] = json!((0..=MAX_ENTRIES).map(|i| format!("e{i}")).collect::<Vec<_>>()),
            &["expertise"],
        ),
        (
            "several at once",
            |v| {
                v["name"] = json!("");
                v["contact"]["email"] = json!("x");
                v["certifications"][0]["expires"] = json!("2027-13-01");
            },
            &["name", "certifications[0].expires", "contact.email"],
        ),
        ("unknown member", |v| v["hobbies"] = json!(["golf"]), &[""]),
        ("missing licence", |v| v.as_object_mut().map(|o| o.remove("license")).map_or((), |_| ()), &[""]),
        ("wrong type", |v| v["years_of_experience"] = json!("many"), &[""]),
    ];
    for (what, edit, paths) in cases {
        let mut v = valid();
        edit(&mut v);
        let errors = parse(&v).err().unwrap_or_else(|| panic!("{what}: accepted"));
        let got: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(got, *paths, "{what}: {errors:?}");
    }
    // Not JSON at all, and too large.
    assert!(Credential::parse(b"{").is_err());
    assert!(Credential::parse(&vec![b' '; 600 * 1024]).is_err());
}

#[test]
fn expiry_is_judged_per_item_on_the_utc_day() {
    let c = parse(&valid()).unwrap_or_else(|e| panic!("{e:?}"));
    // ACLS is valid through 2026-12-04 (its last day).
    assert!(c.expired((2026, 12, 4)).is_empty());
    assert_eq!(c.expired((2026, 12, 5)), ["certifications[1]"]);
    assert_eq!(c.expired((2028, 1, 1)), ["certifications[0]", "certifications[1]"]);
    assert_eq!(c.expired((2028, 7, 1)), ["license", "certifications[0]", "certifications[1]"]);
    for (ms, date) in [
        (0u64, (1970, 1, 1)),
        (951_782_400_000, (2000, 2, 29)),
        (1_796_428_799_999, (2026, 12, 4)),
        (1_796_428_800_000, (2026, 12, 5)),
        (4_107_542_400_000, (2100, 3, 1)),
    ] {
        assert_eq!(utc_date(ms), date, "{ms}");
        let text = format!("{:04}-{:02}-{:02}", date.0, date.1, date.2);
        assert_eq!(medanchor_clinical::template::date_start_ms(&text), Some(ms - ms % 86_400_000), "{text}");
    }
    assert_eq!(medanchor_clinical::template::date_start_ms("1969-12-31"), None);
}
