//! Ids of stored things.

use rand::RngCore;

/// A new random id with a readable prefix, e.g. `src_5f2c0e9a7b1d4c3e`.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}
