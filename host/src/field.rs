//! What is wrong with one field of an input, in the domain's terms: every domain module
//! reports a person's mistake as a [`FieldError`] (or a list of them), and `api/error.rs`
//! answers it as a 400 naming the field.

/// What is wrong with one field a person filled in: the field (a JSON path such as
/// `auth.fields.email`) and what to tell them. The API answers it as a 400 naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field at fault.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}
