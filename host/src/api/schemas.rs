//! The JSON Schemas of the OpenAPI document, generated from the Rust types the handlers read
//! and write (`schemars`, which follows their serde attributes), never kept by hand.
//!
//! Requests and answers are described by two generators: a request body as it is read (a
//! field with a default may be left out), an answer as it is written (every field is there).
//! A type both read and written whose two descriptions differ is named `NameInput` on the
//! request side.

use schemars::generate::SchemaSettings;
use schemars::transform::transform_subschemas;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// Where named schemas live in the document.
const COMPONENTS: &str = "#/components/schemas/";

/// The two generators of one document.
pub struct Schemas {
    /// Describes request bodies as they are read.
    pub requests: SchemaGenerator,
    /// Describes answers as they are written.
    pub responses: SchemaGenerator,
}

impl Default for Schemas {
    fn default() -> Self {
        Self::new()
    }
}

impl Schemas {
    /// Two empty generators of JSON Schema 2020-12 (OpenAPI 3.1's dialect) whose named
    /// schemas go to `components/schemas`.
    pub fn new() -> Schemas {
        let settings = SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
            .with_transform(plain_enums);
        Schemas {
            requests: settings.clone().for_deserialize().into_generator(),
            responses: settings.for_serialize().into_generator(),
        }
    }

    /// `components/schemas`: the answers' schemas, then the requests' (renamed `NameInput`
    /// where a name is taken by a different answer schema), and the names so renamed, whose
    /// refs in request bodies [`rename_refs`] rewrites.
    pub fn finish(mut self) -> (Map<String, Value>, Vec<String>) {
        let mut all = self.responses.take_definitions(true);
        let requests = self.requests.take_definitions(true);
        let clashes: Vec<String> = requests
            .iter()
            .filter(|(name, schema)| all.get(*name).is_some_and(|s| s != *schema))
            .map(|(name, _)| name.clone())
            .collect();
        for (name, mut schema) in requests {
            rename_refs(&mut schema, &clashes);
            let name = if clashes.contains(&name) {
                format!("{name}Input")
            } else {
                name
            };
            all.insert(name, schema);
        }
        (all, clashes)
    }
}

/// A string enum whose values have doc comments is written by schemars as a `oneOf` of
/// `const`s, which client generators read badly (openapi-python-client refuses every value
/// but the first); this writes it as one `enum`, the values' words moved to the description.
fn plain_enums(schema: &mut Schema) {
    transform_subschemas(&mut plain_enums, schema);
    let Some(Value::Array(variants)) = schema.get("oneOf") else {
        return;
    };
    let simple = |v: &Value| {
        let value = v.get("const").filter(|c| c.is_string())?.clone();
        let only_words =
            (v.as_object()?.keys()).all(|k| ["const", "type", "description"].contains(&k.as_str()));
        only_words.then(|| {
            (
                value,
                v.get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
        })
    };
    let Some(values) = variants.iter().map(simple).collect::<Option<Vec<_>>>() else {
        return;
    };
    let mut words: Vec<String> = (schema.get("description").and_then(Value::as_str))
        .map(|d| vec![d.to_string()])
        .unwrap_or_default();
    words.extend(values.iter().filter_map(|(value, description)| {
        Some(format!("`{}`: {}", value.as_str()?, description.as_ref()?))
    }));
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    map.remove("oneOf");
    map.insert("type".into(), json!("string"));
    let values: Vec<Value> = values.into_iter().map(|(value, _)| value).collect();
    map.insert("enum".into(), Value::Array(values));
    if !words.is_empty() {
        map.insert("description".into(), json!(words.join("\n\n")));
    }
}

/// Points every `$ref` to one of `names` at its `NameInput` twin.
pub fn rename_refs(value: &mut Value, names: &[String]) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                match item {
                    Value::String(target) if key == "$ref" => {
                        let renamed = target
                            .strip_prefix(COMPONENTS)
                            .filter(|name| names.iter().any(|n| n == name));
                        if let Some(name) = renamed {
                            *target = format!("{COMPONENTS}{name}Input");
                        }
                    }
                    _ => rename_refs(item, names),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename_refs(item, names)),
        _ => {}
    }
}

/// The query parameters of a route whose query is the `JsonSchema` type `T` (a flat
/// struct): one optional parameter per property, with its schema and description. A query
/// value is never JSON `null`, so `null` is taken out of the schemas of `Option` fields.
pub fn query_parameters<T: JsonSchema>() -> Vec<Value> {
    let settings = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let required: Vec<&str> = (schema.get("required").and_then(Value::as_array))
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or_else(|| json!(""));
            without_null(&mut property);
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "description": description,
                "schema": property,
            })
        })
        .collect()
}

/// `["string", "null"]` to `"string"`, and a `null` default dropped.
fn without_null(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = map.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let single = types.remove(0);
            map.insert("type".into(), single);
        }
    }
    if map.get("default") == Some(&Value::Null) {
        map.remove("default");
    }
}
