//! The one rule for names people give things (source display names, project names, token
//! names): no control, bidirectional or zero-width characters, stored in Unicode NFC without
//! surrounding whitespace, and compared for uniqueness by [`key`] (case-insensitive, every run
//! of whitespace one space), so that names that look alike count as the same name.

use unicode_normalization::UnicodeNormalization;

use crate::field::FieldError;

/// The characters a name may not contain, by class, for the error message: each class is a
/// list of inclusive ranges.
const REJECTED: &[(&str, &[(char, char)])] = &[
    (
        "a control character",
        &[('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')],
    ),
    ("a line or paragraph separator", &[('\u{2028}', '\u{2029}')]),
    (
        "a zero-width character",
        &[
            ('\u{200b}', '\u{200d}'),
            ('\u{2060}', '\u{2060}'),
            ('\u{feff}', '\u{feff}'),
        ],
    ),
    (
        "a bidirectional control character",
        &[
            ('\u{61c}', '\u{61c}'),
            ('\u{200e}', '\u{200f}'),
            ('\u{202a}', '\u{202e}'),
            ('\u{2066}', '\u{2069}'),
        ],
    ),
];

/// Checks a name given for `field` and returns it as stored: NFC, trimmed, 1 to `max_chars`
/// characters. `what` names it for the person (`"a display name"`), `example` shows one. An
/// error names the field and, for a rejected character, its position (counting from 1) and
/// code point.
pub fn check(
    field: &str,
    name: &str,
    what: &str,
    example: &str,
    max_chars: usize,
) -> Result<String, FieldError> {
    if let Some((position, c, class)) = rejected_char(name) {
        return Err(FieldError::new(
            field,
            format!(
                "character {position} is {class} (U+{:04X}); {what} may not contain control, \
                 bidirectional or zero-width characters",
                c as u32
            ),
        ));
    }
    let name: String = name.nfc().collect::<String>().trim().to_string();
    if name.is_empty() || name.chars().count() > max_chars {
        return Err(FieldError::new(
            field,
            format!("{what} is 1 to {max_chars} characters, e.g. {example:?}"),
        ));
    }
    Ok(name)
}

/// What two names are compared by for uniqueness: NFC, lower case, trimmed, and every run of
/// whitespace (no-break and ideographic spaces included) one plain space.
pub fn key(name: &str) -> String {
    let spaced: Vec<&str> = name.split_whitespace().collect();
    spaced.join(" ").nfc().collect::<String>().to_lowercase()
}

/// The first rejected character: its position (from 1), the character and its class.
fn rejected_char(name: &str) -> Option<(usize, char, &'static str)> {
    name.chars().enumerate().find_map(|(i, c)| {
        REJECTED
            .iter()
            .find(|(_, ranges)| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)))
            .map(|(class, _)| (i + 1, c, *class))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_characters_are_named_with_their_position() {
        for (name, position, code) in [
            ("a\0b", 2, "U+0000"),
            ("line\nbreak", 5, "U+000A"),
            ("abc\u{85}", 4, "U+0085"),
            ("\u{202e}gnp.exe", 1, "U+202E"),
            ("x\u{2067}y", 2, "U+2067"),
            ("\u{200b}\u{200b}", 1, "U+200B"),
            ("\u{feff}Jira", 1, "U+FEFF"),
        ] {
            let e = check("display_name", name, "a display name", "Jira", 100).unwrap_err();
            assert_eq!(e.field, "display_name");
            assert!(
                e.message.starts_with(&format!("character {position} is ")),
                "{name:?}: {}",
                e.message
            );
            assert!(e.message.contains(code), "{name:?}: {}", e.message);
        }
    }

    #[test]
    fn names_are_stored_in_nfc_and_trimmed() {
        let decomposed = "  Cafe\u{301}\u{a0}";
        assert_eq!(
            check("name", decomposed, "a name", "Shop", 100).unwrap(),
            "Café"
        );
        assert!(check("name", "\u{3000} ", "a name", "Shop", 100).is_err());
        assert!(check("name", &"x".repeat(101), "a name", "Shop", 100).is_err());
        assert!(check("name", &"é".repeat(100), "a name", "Shop", 100).is_ok());
    }

    #[test]
    fn look_alike_names_have_the_same_key() {
        let plain = key("Our Jira");
        for variant in [
            "our jira",
            " OUR  JIRA ",
            "Our\u{a0}Jira",
            "Our\u{2007}Jira",
            "Our\u{202f}Jira",
            "Our\u{3000}Jira",
            "Our\tJira",
        ] {
            assert_eq!(key(variant), plain, "{variant:?}");
        }
        assert_eq!(key("Cafe\u{301}"), key("CAFÉ"));
        assert_ne!(key("Our Jira 2"), plain);
    }
}
