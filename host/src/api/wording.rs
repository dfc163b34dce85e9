//! Body errors written for a person: serde's messages name Rust types (`expected internally
//! tagged enum ProjectAssignment`), so they are rewritten here as what was expected, with an
//! example, and what came instead.

/// An example value for a field, by its name (the last segment of its path).
fn example_of_field(name: &str) -> Option<&'static str> {
    Some(match name {
        "projects" => r#"{"mode": "all"} or {"mode": "specific", "ids": ["prj_1"]}"#,
        "auth" => r#"{"type": "api-token", "fields": {"token": "..."}}"#,
        "capabilities" => r#"{"read_issue_details": true, "create_issues": false}"#,
        "network" => r#"{"proxy_url": "http://proxy.example.com:3128"}"#,
        "settings" | "fields" => r#"{"name": "value"}"#,
        "keys" => r#"["PROJ-1", "PROJ-2"]"#,
        "ids" => r#"["prj_1"]"#,
        "mode" => r#""all" or "specific""#,
        _ => return None,
    })
}

/// What serde's `expected ...` means, with an example.
fn expected(what: &str) -> String {
    let kind = match what {
        "a string" => "text, e.g. \"abc\"",
        "a boolean" => "true or false",
        "a sequence" => "a list, e.g. [\"a\", \"b\"]",
        "a map" => "an object, e.g. {\"name\": \"value\"}",
        w if w.starts_with("u") || w.starts_with("i") || w.contains("integer") => {
            "a whole number, e.g. 50"
        }
        w if w.starts_with("struct ") || w.contains("enum ") => "an object, e.g. {...}",
        _ => return what.to_string(),
    };
    kind.to_string()
}

/// serde's `invalid type: <got>` part, in words.
fn got(what: &str) -> String {
    if let Some(s) = what.strip_prefix("string ") {
        return format!("the text {s}");
    }
    for (prefix, name) in [
        ("integer ", "the number "),
        ("floating point ", "the number "),
        ("boolean ", ""),
    ] {
        if let Some(v) = what.strip_prefix(prefix) {
            return format!("{name}{}", v.trim_matches('`'));
        }
    }
    match what {
        "map" => "an object".into(),
        "sequence" => "a list".into(),
        "null" => "null".into(),
        other => other.into(),
    }
}

/// serde's message for a body field at `field` (its last path segment names it), rewritten
/// for a person; messages that already read well are kept.
pub fn for_a_person(field: Option<&str>, message: &str) -> String {
    let name = field.and_then(|f| f.rsplit('.').next()).unwrap_or("");
    let name = name.split('[').next().unwrap_or(name);
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((given, wanted)) = rest.split_once(", expected ")
    {
        let wanted = example_of_field(name)
            .map(str::to_string)
            .unwrap_or_else(|| expected(wanted));
        return format!("expected {wanted}; got {}", got(given));
    }
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return match example_of_field(missing) {
            Some(e) => format!("{missing} is required, e.g. {e}"),
            None => format!("{missing} is required"),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `")
        && let Some((given, wanted)) = rest.split_once("`, expected ")
    {
        return format!(
            "{given:?} is not allowed here; use {}",
            wanted.replace('`', "\"")
        );
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((given, wanted)) = rest.split_once("`, expected ")
    {
        return format!(
            "there is no field {given:?} here; the fields are {}",
            wanted.replace('`', "\"")
        );
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::for_a_person;

    #[test]
    fn rust_types_never_reach_a_person() {
        let m = for_a_person(
            Some("projects"),
            "invalid type: string \"all\", expected internally tagged enum ProjectAssignment",
        );
        assert_eq!(
            m,
            r#"expected {"mode": "all"} or {"mode": "specific", "ids": ["prj_1"]}; got the text "all""#
        );
        let m = for_a_person(
            Some("capabilities.create_issues"),
            "invalid type: integer `1`, expected a boolean",
        );
        assert_eq!(m, "expected true or false; got the number 1");
        let m = for_a_person(
            Some("auth"),
            "invalid type: sequence, expected struct AuthInput",
        );
        assert!(m.starts_with("expected {\"type\""), "{m}");
        let m = for_a_person(
            Some("projects.mode"),
            "unknown variant `some`, expected `all` or `specific`",
        );
        assert_eq!(m, r#""some" is not allowed here; use "all" or "specific""#);
        assert_eq!(
            for_a_person(Some("projects"), "missing field `projects`"),
            r#"projects is required, e.g. {"mode": "all"} or {"mode": "specific", "ids": ["prj_1"]}"#
        );
    }
}
