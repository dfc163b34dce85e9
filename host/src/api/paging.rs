//! The paging parameters of every list (`limit`, `page`, `cursor`; see [`crate::paging`]) for
//! the OpenAPI document.

use serde_json::{Value, json};

use crate::paging::{DEFAULT_LIMIT, MAX_LIMIT};

/// `limit`, `page` and `cursor` of a list with the default bounds.
pub fn parameters() -> Vec<Value> {
    page_parameters(DEFAULT_LIMIT, MAX_LIMIT)
}

/// `limit` (default `default_limit`, at most `max`), `page` and `cursor`.
pub fn page_parameters(default_limit: usize, max: usize) -> Vec<Value> {
    [
        ("limit", format!("Items per page; asks for the paged answer `{{items, total, page, limit, pages, next_page, next_cursor}}` instead of the array (default {default_limit} when only `page` or `cursor` is given)"), json!({"type": "integer", "minimum": 1, "maximum": max})),
        ("page", "Page number; asks for the paged answer".into(), json!({"type": "integer", "minimum": 1})),
        ("cursor", "The previous page's `next_cursor` (opaque): the page after it, unaffected by items added or removed meanwhile; not with `page`".into(), json!({"type": "string"})),
    ]
    .into_iter()
    .map(|(name, description, schema)| query(name, &description, schema))
    .collect()
}

/// One query parameter of the document.
pub fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}
