//! Draft connection tests that passed, for the source saved right after.

use std::collections::BTreeMap;

use serde_json::json;

use super::TestOutcome;
use crate::store::records::{SourceRecord, TestResult, now};

/// Successful draft tests of the last minutes, by connection, so that a source saved right
/// after its draft passed starts with that result instead of "not tested yet". A connection is
/// told by a salted sha-256 of everything that decides how the tracker is reached (provider,
/// base URL, auth type and fields, secrets, settings, network); nothing else is kept, and
/// only in memory.
pub struct DraftTests {
    salt: [u8; 32],
    passed: std::sync::Mutex<std::collections::HashMap<[u8; 32], (std::time::Instant, TestResult)>>,
}

impl Default for DraftTests {
    fn default() -> Self {
        DraftTests {
            salt: rand::random(),
            passed: Default::default(),
        }
    }
}

impl DraftTests {
    /// How long a passed draft test counts for a save.
    const FRESH: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    /// The most remembered; past it the list starts over.
    const MAX: usize = 256;

    fn fingerprint(&self, record: &SourceRecord, secrets: &BTreeMap<String, String>) -> [u8; 32] {
        use sha2::Digest as _;
        let connection = json!([
            record.provider,
            record.base_url,
            record.auth_type,
            record.auth_fields,
            secrets,
            record.settings,
            record.network,
        ]);
        let mut hash = sha2::Sha256::new();
        hash.update(self.salt);
        hash.update(connection.to_string());
        hash.finalize().into()
    }

    pub fn remember(
        &self,
        record: &SourceRecord,
        secrets: &BTreeMap<String, String>,
        outcome: &TestOutcome,
    ) {
        let key = self.fingerprint(record, secrets);
        let result = TestResult {
            ok: outcome.ok,
            code: outcome.code.clone(),
            message: outcome.message.clone(),
            at: now(),
        };
        let mut passed = self.passed.lock().unwrap_or_else(|e| e.into_inner());
        if passed.len() >= Self::MAX {
            passed.clear();
        }
        passed.insert(key, (std::time::Instant::now(), result));
    }

    /// The passed draft test of this connection, if one ran in the last minutes.
    pub fn passed(
        &self,
        record: &SourceRecord,
        secrets: &BTreeMap<String, String>,
    ) -> Option<TestResult> {
        let key = self.fingerprint(record, secrets);
        let passed = self.passed.lock().unwrap_or_else(|e| e.into_inner());
        let (at, result) = passed.get(&key)?;
        (at.elapsed() < Self::FRESH).then(|| result.clone())
    }
}
