//! Templates: typed, versioned schemas of structured records, and the
//! validation of a record's content against one.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use medanchor_contracts::types::RecordType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::codes::{is_loinc, Icd10Cm, LabFlag, Route, Severity};
use crate::units::{self, MeasureError, Quantity};

/// Longest free text a field takes unless it says otherwise (a discharge
/// narrative fits; a pasted file does not).
pub const DEFAULT_TEXT_MAX: usize = 20_000;
/// Most entries a list field takes (diagnoses, medications, …).
pub const MAX_LIST: usize = 200;
/// Most failing fields reported: past this a body is not a form that went
/// wrong, and an unbounded report would be an amplification.
pub const MAX_ERRORS: usize = 100;

/// A template's id: a lowercase slug (`vital-signs`), 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, pattern = "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"))]
#[serde(transparent)]
pub struct TemplateId(String);

impl TemplateId {
    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TemplateId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(TemplateId(s.to_string()))
        } else {
            Err("a template id is 1 to 64 lowercase letters, digits and inner hyphens".into())
        }
    }
}

impl<'de> Deserialize<'de> for TemplateId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which template, at which version, a record was written with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateRef {
    /// The template.
    pub id: TemplateId,
    /// Its version, from 1.
    #[serde(deserialize_with = "whole")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub version: u32,
}

/// Who may use a template: `{"kind": "builtin" | "tenant"}` or
/// `{"kind": "specialty" | "provider", "name": …}`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Scope {
    /// Shipped with the node: everyone.
    Builtin,
    /// Added by an administrator: everyone in the tenant.
    Tenant,
    /// Added for a specialty (e.g. `cardiology`): its providers.
    Specialty(String),
    /// A provider's own saved template: that provider (a principal).
    Provider(String),
}

/// The longest specialty or principal a scope names.
pub const MAX_SCOPE_NAME: usize = 128;

impl<'de> Deserialize<'de> for Scope {
    /// Exactly the two shapes: a `name` with `specialty` and `provider`
    /// (1 to 128 characters), none with the others, no other member.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            kind: String,
            #[serde(default)]
            name: Option<String>,
        }
        let w = Wire::deserialize(d)?;
        let named = |n: Option<String>| match n {
            Some(n) if (1..=MAX_SCOPE_NAME).contains(&n.chars().count()) => Ok(n),
            _ => Err(D::Error::custom(format!("scope {} needs a name of 1 to {MAX_SCOPE_NAME} characters", w.kind))),
        };
        match (w.kind.as_str(), w.name) {
            ("builtin", None) => Ok(Scope::Builtin),
            ("tenant", None) => Ok(Scope::Tenant),
            ("specialty", n) => named(n).map(Scope::Specialty),
            ("provider", n) => named(n).map(Scope::Provider),
            ("builtin" | "tenant", Some(_)) => Err(D::Error::custom("this scope takes no name")),
            _ => Err(D::Error::custom("scope kind is builtin, tenant, specialty or provider")),
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let kind = |kinds: &[&str]| ObjectBuilder::new().schema_type(Type::String).enum_values(Some(kinds.to_vec()));
        let unnamed = ObjectBuilder::new()
            .property("kind", kind(&["builtin", "tenant"]))
            .required("kind")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let named = ObjectBuilder::new()
            .property("kind", kind(&["specialty", "provider"]))
            .property(
                "name",
                ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(MAX_SCOPE_NAME)),
            )
            .required("kind")
            .required("name")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new()
            .item(unnamed)
            .item(named)
            .description(Some("Who may use a template: the tenant (administrators add), a specialty's providers, or one provider (a principal)"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Scope {}

/// A typed, versioned schema of one kind of structured record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Template {
    /// The template.
    pub id: TemplateId,
    /// Its version: a record names the version it was written with, and
    /// versions coexist.
    #[serde(deserialize_with = "whole")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub version: u32,
    /// Shown to people.
    pub title: String,
    /// The contract's record type records of this template are anchored
    /// as, and so the consent data type that governs who reads them.
    #[serde(with = "record_type_name")]
    #[cfg_attr(feature = "openapi", schema(value_type = medanchor_contracts::types::RecordType))]
    pub record_type: RecordType,
    /// Who may use it.
    pub scope: Scope,
    /// The fields, in form order.
    pub fields: Vec<Field>,
}

mod record_type_name {
    use medanchor_contracts::types::RecordType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &RecordType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RecordType, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// One field of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Field {
    /// The key in the record's content: `snake_case`.
    pub name: String,
    /// Shown to people.
    pub label: String,
    /// Whether the record must have it.
    #[serde(default)]
    pub required: bool,
    /// What it holds.
    pub kind: FieldKind,
    /// What a new record from this template starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<serde_json::Value>))]
    pub default: Option<Value>,
}

/// What a field holds. Lists hold at least `min` and at most [`MAX_LIST`]
/// entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Unknown members of a kind are ignored, not refused: the document
// cannot say `additionalProperties: false` of an internally tagged enum's
// variants, and a request it describes as valid must not be refused.
#[serde(tag = "type", rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FieldKind {
    /// Free text (trimmed; empty counts as absent).
    Text {
        /// Longest text, in characters.
        #[serde(default = "default_text_max", deserialize_with = "whole")]
        max_len: usize,
    },
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A phone number: an optional `+`, 7 to 15 digits, spaces, hyphens,
    /// dots or parentheses between them.
    Phone,
    /// Yes or no.
    Boolean,
    /// One of `options`.
    Choice {
        /// The allowed values.
        options: Vec<String>,
    },
    /// `{ "value": n, "unit": "UCUM" }` of a [`Quantity`].
    Measurement {
        /// What is measured.
        quantity: Quantity,
    },
    /// `[{ "code": ICD-10-CM, "description"?, "primary"? }]`.
    Diagnoses {
        /// Fewest entries.
        #[serde(default, deserialize_with = "whole")]
        min: usize,
    },
    /// `[{ "name", "dose": measurement, "route", "frequency", "start"?,
    /// "end"?, "instructions"? }]`.
    Medications {
        /// Fewest entries.
        #[serde(default, deserialize_with = "whole")]
        min: usize,
    },
    /// `[{ "substance", "reaction", "severity" }]`.
    Allergies {
        /// Fewest entries.
        #[serde(default, deserialize_with = "whole")]
        min: usize,
    },
    /// `[{ "test", "loinc"?, "value", "unit"?, "reference_range"?,
    /// "flag"? }]`.
    LabResults {
        /// Fewest entries.
        #[serde(default, deserialize_with = "whole")]
        min: usize,
    },
    /// `[{ "name", "relationship", "phone", "email"? }]`: people to call.
    Contacts {
        /// Fewest entries.
        #[serde(default, deserialize_with = "whole")]
        min: usize,
    },
    /// `["…", …]`: short labels (medical alerts, say), each at most 200
    /// characters.
    Tags {
        /// Fewest entries.
        #[serde(default, deserialize_with = "whole")]
        min: usize,
    },
}

fn default_text_max() -> usize {
    DEFAULT_TEXT_MAX
}

/// A whole number as JSON Schema counts them: `2.0` is 2 (clients that
/// hold every number as a double send it so).
pub fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let n = Number::deserialize(d)?;
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        // Below 2^64 and whole: exact in an f64, so the cast is too.
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0 => Some(f as u64),
        _ => None,
    };
    whole.and_then(|u| T::try_from(u).ok()).ok_or_else(|| D::Error::custom(format!("{n} is not an integer in range")))
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// A required field is absent or empty.
    #[error("is required")]
    Required,
    /// The template has no such field.
    #[error("is not a field of this template")]
    Unknown,
    /// The JSON type is wrong.
    #[error("must be {0}")]
    Type(&'static str),
    /// Text longer than the field takes.
    #[error("is longer than {0} characters")]
    TooLong(usize),
    /// Not a `YYYY-MM-DD` calendar date.
    #[error("must be a date YYYY-MM-DD")]
    Date,
    /// Not one of the allowed values.
    #[error("must be one of {0:?}")]
    NotOneOf(Vec<String>),
    /// Not an ICD-10-CM code.
    #[error("{0}")]
    Code(#[from] crate::codes::CodeError),
    /// Not a LOINC code (with its check digit).
    #[error("must be a LOINC code such as 2345-7 (with its check digit)")]
    Loinc,
    /// A measurement that cannot be.
    #[error("{0}")]
    Measure(#[from] MeasureError),
    /// Fewer entries than the field needs.
    #[error("needs at least {0} entries")]
    TooFew(usize),
    /// More entries than a list takes.
    #[error("takes at most {0} entries")]
    TooMany(usize),
    /// More than one entry marked primary.
    #[error("has more than one primary diagnosis")]
    TwoPrimaries,
    /// An end before its start.
    #[error("ends before it starts")]
    EndsBeforeStart,
    /// Not a phone number.
    #[error("must be a phone number (7 to 15 digits, `+` optional)")]
    Phone,
    /// Not an e-mail address.
    #[error("must be an e-mail address")]
    Email,
    /// A number outside its range.
    #[error("must be from {0} to {1}")]
    Range(i64, i64),
    /// The document's shape is wrong (a missing or unknown member, a
    /// wrong type), in the parser's words.
    #[error("{0}")]
    Shape(String),
}

/// What a structured record is found by ([`Template::search_terms`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchTerms {
    /// ICD-10-CM codes, as written in normal form (`E11.9`).
    pub diagnoses: Vec<String>,
    /// Medication names.
    pub medications: Vec<String>,
}

/// A failing field: its path in the content (`medications[1].dose.unit`)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Where.
    pub path: String,
    /// What.
    pub problem: Problem,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path, self.problem)
    }
}

/// Why a template itself is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Version 0.
    #[error("versions start at 1")]
    Version,
    /// A field name that is not `snake_case`, or used twice.
    #[error("field {0:?}: names are unique snake_case")]
    FieldName(String),
    /// A choice without options, or with duplicates.
    #[error("field {0:?}: a choice needs distinct options")]
    Options(String),
    /// A default its own field refuses.
    #[error("field {0:?}: its default is not valid: {1}")]
    Default(String, String),
    /// No fields, or too many.
    #[error("a template has 1 to 200 fields")]
    Fields,
}

impl Template {
    /// Which template and version this is.
    pub fn reference(&self) -> TemplateRef {
        TemplateRef { id: self.id.clone(), version: self.version }
    }

    /// Checks the template is well formed (for one an administrator or a
    /// provider supplies): unique snake_case names, choices with options,
    /// defaults their fields accept.
    pub fn check(&self) -> Result<(), TemplateError> {
        if self.version == 0 {
            return Err(TemplateError::Version);
        }
        if self.fields.is_empty() || self.fields.len() > 200 {
            return Err(TemplateError::Fields);
        }
        let mut seen = BTreeSet::new();
        for f in &self.fields {
            let snake = f.name.len() <= 64
                && f.name.starts_with(|c: char| c.is_ascii_lowercase())
                && f.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !snake || !seen.insert(f.name.as_str()) {
                return Err(TemplateError::FieldName(f.name.clone()));
            }
            if let FieldKind::Choice { options } = &f.kind {
                let distinct: BTreeSet<&String> = options.iter().collect();
                if options.is_empty() || distinct.len() != options.len() {
                    return Err(TemplateError::Options(f.name.clone()));
                }
            }
            if let Some(d) = &f.default {
                let mut errors = Vec::new();
                check_field(&f.kind, d, &f.name, &mut errors);
                if let Some(e) = errors.first() {
                    return Err(TemplateError::Default(f.name.clone(), e.to_string()));
                }
            }
        }
        Ok(())
    }

    /// What a search finds a record by in `content` (its normal form):
    /// the ICD-10-CM codes of its diagnosis fields and the names of its
    /// medications, in field order, without repeats.
    pub fn search_terms(&self, content: &Value) -> SearchTerms {
        let mut terms = SearchTerms::default();
        let push = |list: &mut Vec<String>, v: Option<&str>| {
            if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
                if !list.iter().any(|t| t == v) {
                    list.push(v.to_string());
                }
            }
        };
        for field in &self.fields {
            let Some(entries) = content.get(&field.name).and_then(Value::as_array) else { continue };
            for entry in entries {
                match field.kind {
                    FieldKind::Diagnoses { .. } => push(&mut terms.diagnoses, entry["code"].as_str()),
                    FieldKind::Medications { .. } => push(&mut terms.medications, entry["name"].as_str()),
                    _ => {}
                }
            }
        }
        terms
    }

    /// A new record's content: every field's default.
    pub fn prefill(&self) -> Value {
        let fields: Map<String, Value> =
            self.fields.iter().filter_map(|f| f.default.clone().map(|d| (f.name.clone(), d))).collect();
        Value::Object(fields)
    }

    /// Checks `content` against the template: the normalised content
    /// (codes in their printed form, text trimmed, empty optional fields
    /// dropped), or every failing field (up to [`MAX_ERRORS`]).
    pub fn validate(&self, content: &Value) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(object) = content.as_object() else {
            return Err(vec![FieldError { path: "content".into(), problem: Problem::Type("an object") }]);
        };
        for key in object.keys() {
            if !self.fields.iter().any(|f| &f.name == key) {
                // The key is caller input: bounded in the path.
                errors.push(FieldError { path: key.chars().take(64).collect(), problem: Problem::Unknown });
            }
        }
        let mut out = Map::new();
        for f in &self.fields {
            match object.get(&f.name).filter(|v| !is_empty(v)) {
                None if f.required => errors.push(FieldError { path: f.name.clone(), problem: Problem::Required }),
                None => {}
                Some(v) => {
                    if let Some(n) = check_field(&f.kind, v, &f.name, &mut errors) {
                        out.insert(f.name.clone(), n);
                    }
                }
            }
            if errors.len() >= MAX_ERRORS {
                break;
            }
        }
        errors.truncate(MAX_ERRORS);
        if errors.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(errors)
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Checks one value of `kind` at `path`; the normalised value, or `None`
/// with the problems pushed.
fn check_field(kind: &FieldKind, v: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Value> {
    let mut fail = |problem: Problem| {
        errors.push(FieldError { path: path.to_string(), problem });
        None
    };
    match kind {
        FieldKind::Text { max_len } => match v.as_str() {
            None => fail(Problem::Type("text")),
            Some(s) if s.trim().chars().count() > *max_len => fail(Problem::TooLong(*max_len)),
            Some(s) => Some(Value::String(s.trim().to_string())),
        },
        FieldKind::Date => match v.as_str().and_then(parse_date) {
            None => fail(Problem::Date),
            Some(_) => Some(v.clone()),
        },
        FieldKind::Phone => match v.as_str().map(str::trim) {
            Some(s) if is_phone(s) => Some(Value::String(s.to_string())),
            _ => fail(Problem::Phone),
        },
        FieldKind::Boolean => match v {
            Value::Bool(_) => Some(v.clone()),
            _ => fail(Problem::Type("true or false")),
        },
        FieldKind::Choice { options } => match v.as_str() {
            Some(s) if options.iter().any(|o| o == s) => Some(v.clone()),
            _ => fail(Problem::NotOneOf(options.clone())),
        },
        FieldKind::Measurement { quantity } => check_measurement(*quantity, v, path, errors),
        FieldKind::Diagnoses { min } => check_list(v, *min, path, errors, check_diagnosis).and_then(|list| {
            let primaries = list.iter().filter(|d| d["primary"] == Value::Bool(true)).count();
            if primaries > 1 {
                errors.push(FieldError { path: path.to_string(), problem: Problem::TwoPrimaries });
                return None;
            }
            Some(Value::Array(list))
        }),
        FieldKind::Medications { min } => check_list(v, *min, path, errors, check_medication).map(Value::Array),
        FieldKind::Allergies { min } => check_list(v, *min, path, errors, check_allergy).map(Value::Array),
        FieldKind::LabResults { min } => check_list(v, *min, path, errors, check_lab).map(Value::Array),
        FieldKind::Contacts { min } => check_list(v, *min, path, errors, check_contact).map(Value::Array),
        FieldKind::Tags { min } => check_list(v, *min, path, errors, check_tag).map(Value::Array),
    }
}

fn check_measurement(quantity: Quantity, v: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Value> {
    let object = entry_object(v, path, &["value", "unit"], errors)?;
    let value = object.get("value").and_then(Value::as_f64);
    let unit = object.get("unit").and_then(Value::as_str);
    let (Some(value), Some(unit)) = (value, unit) else {
        if value.is_none() {
            errors.push(FieldError { path: format!("{path}.value"), problem: Problem::Type("a number") });
        }
        if unit.is_none() {
            errors.push(FieldError { path: format!("{path}.unit"), problem: Problem::Type("a UCUM unit") });
        }
        return None;
    };
    match units::check(quantity, value, unit) {
        Ok(()) => Some(v.clone()),
        Err(e @ MeasureError::Unit { .. }) => {
            errors.push(FieldError { path: format!("{path}.unit"), problem: e.into() });
            None
        }
        Err(e) => {
            errors.push(FieldError { path: format!("{path}.value"), problem: e.into() });
            None
        }
    }
}

/// `v` as an object with only `allowed` keys; unknown keys are reported.
fn entry_object<'a>(
    v: &'a Value,
    path: &str,
    allowed: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    let Some(object) = v.as_object() else {
        errors.push(FieldError { path: path.to_string(), problem: Problem::Type("an object") });
        return None;
    };
    let before = errors.len();
    for key in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
        errors.push(FieldError {
            path: format!("{path}.{}", key.chars().take(64).collect::<String>()),
            problem: Problem::Unknown,
        });
    }
    (errors.len() == before).then_some(object)
}

type EntryCheck = fn(&Value, &str, &mut Vec<FieldError>) -> Option<Value>;

fn check_list(v: &Value, min: usize, path: &str, errors: &mut Vec<FieldError>, each: EntryCheck) -> Option<Vec<Value>> {
    let Some(items) = v.as_array() else {
        errors.push(FieldError { path: path.to_string(), problem: Problem::Type("a list") });
        return None;
    };
    if items.len() < min {
        errors.push(FieldError { path: path.to_string(), problem: Problem::TooFew(min) });
        return None;
    }
    if items.len() > MAX_LIST {
        errors.push(FieldError { path: path.to_string(), problem: Problem::TooMany(MAX_LIST) });
        return None;
    }
    let before = errors.len();
    let out: Vec<Value> =
        items.iter().enumerate().filter_map(|(i, item)| each(item, &format!("{path}[{i}]"), errors)).collect();
    (errors.len() == before).then_some(out)
}

/// A sub-field of a list entry: required or optional, checked as `kind`.
fn sub(
    object: &Map<String, Value>,
    key: &str,
    kind: &FieldKind,
    required: bool,
    path: &str,
    errors: &mut Vec<FieldError>,
    out: &mut Map<String, Value>,
) {
    let at = format!("{path}.{key}");
    match object.get(key).filter(|v| !is_empty(v)) {
        None if required => errors.push(FieldError { path: at, problem: Problem::Required }),
        None => {}
        Some(v) => {
            if let Some(n) = check_field(kind, v, &at, errors) {
                out.insert(key.to_string(), n);
            }
        }
    }
}

const SHORT: FieldKind = FieldKind::Text { max_len: 200 };
const NOTE: FieldKind = FieldKind::Text { max_len: 2_000 };

fn names_kind(names: Vec<&str>) -> FieldKind {
    FieldKind::Choice { options: names.into_iter().map(str::to_string).collect() }
}

fn check_diagnosis(v: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Value> {
    let object = entry_object(v, path, &["code", "description", "primary"], errors)?;
    let before = errors.len();
    let mut out = Map::new();
    match object.get("code").filter(|v| !is_empty(v)).map(|c| c.as_str().map(Icd10Cm::from_str)) {
        None => errors.push(FieldError { path: format!("{path}.code"), problem: Problem::Required }),
        Some(None) => {
            errors.push(FieldError { path: format!("{path}.code"), problem: Problem::Type("an ICD-10-CM code") })
        }
        Some(Some(Err(e))) => errors.push(FieldError { path: format!("{path}.code"), problem: e.into() }),
        Some(Some(Ok(code))) => {
            out.insert("code".into(), Value::String(code.to_string()));
        }
    }
    sub(object, "description", &SHORT, false, path, errors, &mut out);
    sub(object, "primary", &FieldKind::Boolean, false, path, errors, &mut out);
    (errors.len() == before).then_some(Value::Object(out))
}

fn check_medication(v: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Value> {
    let object =
        entry_object(v, path, &["name", "dose", "route", "frequency", "start", "end", "instructions"], errors)?;
    let before = errors.len();
    let mut out = Map::new();
    sub(object, "name", &SHORT, true, path, errors, &mut out);
    sub(object, "dose", &FieldKind::Measurement { quantity: Quantity::Dose }, true, path, errors, &mut out);
    sub(object, "route", &names_kind(Route::names()), true, path, errors, &mut out);
    sub(object, "frequency", &names_kind(crate::codes::Frequency::names()), true, path, errors, &mut out);
    sub(object, "start", &FieldKind::Date, false, path, errors, &mut out);
    sub(object, "end", &FieldKind::Date, false, path, errors, &mut out);
    sub(object, "instructions", &NOTE, false, path, errors, &mut out);
    if let (Some(s), Some(e)) = (out.get("start").and_then(date_of), out.get("end").and_then(date_of)) {
        if e < s {
            errors.push(FieldError { path: format!("{path}.end"), problem: Problem::EndsBeforeStart });
        }
    }
    (errors.len() == before).then_some(Value::Object(out))
}

fn check_allergy(v: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Value> {
    let object = entry_object(v, path, &["substance", "reaction", "severity"], errors)?;
    let before = errors.len();
    let mut out = Map::new();
    sub(object, "substance", &SHORT, true, path, errors, &mut out);
    sub(object, "reaction", &SHORT, true, path, errors, &mut out);
    sub(object, "severity", &names_kind(Severity::names()), true, path, errors, &mut out);
    (errors.len() == before).then_some(Value::Object(out))
}

fn check_lab(v: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Value> {
    let object = entry_object(v, path, &["test", "loinc", "value", "unit", "reference_range", "flag"], errors)?;
    let before = errors.len();
    let mut out = Map::new();
    sub(object, "test", &SHORT, true, path, errors, &mut out);
    match object.get("loinc").filter(|v| !is_empty(v)) {
        None => {}
        Some(Value::String(s)) if is_loinc(s.trim()) => {
            out.insert("loinc".into(), Value::String(s.trim().to_string()));
        }
        Some(_) => errors.push(FieldError { path: format!("{path}.loinc"), problem: Problem::Loinc }),
    }
    // A result is a number (with its unit) or a text (`positive`, `>1000`).
    match object.get("value").filter(|v| !is_empty(v)) {
        None => errors.push(FieldError { path: format!("{path}.value"), problem: Problem::Required }),
        Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
            out.insert("value".into(), Value::Number(n.clone()));
        }
        Some(Value::String(s)) if s.trim().chars().count() <= 200 => {
            out.insert("value".into(), Value::String(s.trim().to_string()));
        }
        Some(_) => errors
            .push(FieldError { path: format!("{path}.value"), problem: Problem::Type("a number or a short text") }),
    }
    sub(object, "unit", &FieldKind::Text { max_len: 32 }, false, path, errors, &mut out);
    sub(object, "reference_range", &SHORT, false, path, errors, &mut out);
    sub(object, "flag", &names_kind(LabFlag::names()), false, path, errors, &mut out);
    (errors.len() == before).then_some(Value::Object(out))
}

fn check_contact(v: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Value> {
    let object = entry_object(v, path, &["name", "relationship", "phone", "email"], errors)?;
    let before = errors.len();
    let mut out = Map::new();
    sub(object, "name", &SHORT, true, path, errors, &mut out);
    sub(object, "relationship", &SHORT, true, path, errors, &mut out);
    match object.get("phone").filter(|v| !is_empty(v)) {
        None => errors.push(FieldError { path: format!("{path}.phone"), problem: Problem::Required }),
        Some(Value::String(p)) if is_phone(p.trim()) => {
            out.insert("phone".into(), Value::String(p.trim().to_string()));
        }
        Some(_) => errors.push(FieldError { path: format!("{path}.phone"), problem: Problem::Phone }),
    }
    match object.get("email").filter(|v| !is_empty(v)) {
        None => {}
        Some(Value::String(e)) if is_email(e.trim()) => {
            out.insert("email".into(), Value::String(e.trim().to_string()));
        }
        Some(_) => errors.push(FieldError { path: format!("{path}.email"), problem: Problem::Email }),
    }
    (errors.len() == before).then_some(Value::Object(out))
}

fn check_tag(v: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Value> {
    check_field(&SHORT, v, path, errors)
}

/// A phone number as people write it: an optional `+`, then 7 to 15
/// digits, with spaces, hyphens, dots or parentheses between them.
pub fn is_phone(s: &str) -> bool {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    (7..=15).contains(&digits) && body.bytes().all(|b| b.is_ascii_digit() || b" -.()".contains(&b)) && s.len() <= 32
}

/// An e-mail address's shape: one `@` with text on both sides and a dot in
/// the domain (what a form can check; delivery is the only real proof).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && s.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

fn date_of(v: &Value) -> Option<(i32, u32, u32)> {
    v.as_str().and_then(parse_date)
}

/// A `YYYY-MM-DD` proleptic Gregorian date from year 1800 to 2200 (a
/// clinical date outside that is a typo).
pub fn parse_date(s: &str) -> Option<(i32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r).filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?.parse().ok()
    };
    let (y, m, d) = (num(0..4)? as i32, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    ((1800..=2200).contains(&y) && (1..=days).contains(&d)).then_some((y, m, d))
}

/// Unix milliseconds at the start (UTC) of a `YYYY-MM-DD` date
/// ([`parse_date`]'s range; before 1970 is `None`).
pub fn date_start_ms(s: &str) -> Option<u64> {
    let (y, m, d) = parse_date(s)?;
    // Howard Hinnant's days-from-civil.
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok().map(|d| d * 86_400_000)
}

/// A measurement's JSON, for defaults and tests.
pub fn measurement(value: f64, unit: &str) -> Value {
    let mut m = Map::new();
    m.insert("value".into(), Number::from_f64(value).map_or(Value::Null, Value::Number));
    m.insert("unit".into(), Value::String(unit.into()));
    Value::Object(m)
}
