//! Schemas of the contracts' vocabulary for the API's OpenAPI document
//! (feature `openapi`): the types describe their own text forms, so the
//! document is generated from the same names and parsers the node uses.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// A string schema whose values are exactly `names`.
pub(crate) fn names_schema<'a>(description: &str, names: impl Iterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names.collect::<Vec<_>>()))
        .into()
}

/// A string schema of the language `pattern`, with an example.
pub(crate) fn pattern_schema(description: &str, pattern: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([example])
        .into()
}
