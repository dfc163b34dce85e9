//! The audit log's writer: every admin change is recorded in the transaction that makes it.

use serde_json::json;

use crate::store::records::now;
use crate::store::{StoreError, Writer};

/// Records an admin change in the audit log (never with a secret value).
pub fn audit(
    w: &mut Writer,
    who: &str,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    w.audit(
        &json!({"at": now(), "who": who, "action": action, "target": target, "details": details}),
    )?;
    Ok(())
}
