//! The delivery ids seen recently, per source, to drop repeated deliveries. Kept in the
//! database (table `deliveries`: id -> remembered until), so a tracker's retry that lands on
//! another replica, or after a restart, is recognised too; the same code on redb and
//! PostgreSQL. A claim is one small write transaction (a webhook event is rare next to plugin
//! calls); every `capacity / 100` claims (at most 1,000) a process prunes the expired ids and,
//! past `capacity`, the oldest, so the table stays bounded.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::store::records::Millis;
use crate::store::{DELIVERIES, Read, Store, StoreError};

/// How long a delivery id is remembered: GitHub Enterprise Server's redelivery horizon (7
/// days), the longest of the trackers' (GitHub 3 days, Azure DevOps probation about 36 hours,
/// Jira retries up to 30 minutes; `../shared/providers-events.md` section 7).
pub const DELIVERY_HORIZON_MS: Millis = 7 * 24 * 3600 * 1000;

/// The most delivery ids remembered; past it the oldest are forgotten first.
pub const MAX_DELIVERIES: usize = 100_000;

/// The delivery ids seen, in the database.
pub struct Deliveries {
    horizon: Millis,
    capacity: usize,
    /// Claims made by this process, to prune every `prune_every`.
    claims: AtomicUsize,
    prune_every: usize,
}

impl Default for Deliveries {
    fn default() -> Self {
        Deliveries::new(DELIVERY_HORIZON_MS, MAX_DELIVERIES)
    }
}

/// The stored id of delivery `id` of `source_id`.
fn key(source_id: &str, id: &str) -> String {
    format!("{source_id}\u{1f}{id}")
}

impl Deliveries {
    /// Remembers ids for `horizon` milliseconds, about `capacity` of them.
    pub fn new(horizon: Millis, capacity: usize) -> Deliveries {
        Deliveries {
            horizon,
            capacity,
            claims: AtomicUsize::new(0),
            prune_every: (capacity / 100).clamp(1, 1000),
        }
    }

    /// Claims delivery `id` of `source_id` at `now`: true the first time (on any replica),
    /// false for a repeat within the horizon.
    pub async fn claim(
        &self,
        store: &Store,
        source_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let (key, until) = (key(source_id, id), now + self.horizon);
        let claimed = store
            .write(move |w| {
                let seen: Option<Millis> = w.get(DELIVERIES, &key)?;
                if seen.is_some_and(|seen| seen > now) {
                    return Ok(false);
                }
                w.put(DELIVERIES, &key, &until)?;
                Ok::<_, StoreError>(true)
            })
            .await?;
        if claimed && (self.claims.fetch_add(1, Ordering::Relaxed)).is_multiple_of(self.prune_every)
        {
            self.prune(store, now).await?;
        }
        Ok(claimed)
    }

    /// Forgets a claim whose event could not be taken (the queue was full), so the tracker's
    /// retry is processed.
    pub async fn release(
        &self,
        store: &Store,
        source_id: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let key = key(source_id, id);
        store.write(move |w| w.delete(DELIVERIES, &key)).await?;
        Ok(())
    }

    /// Deletes the expired ids and, past the capacity, the oldest.
    async fn prune(&self, store: &Store, now: Millis) -> Result<(), StoreError> {
        let capacity = self.capacity;
        store
            .write(move |w| {
                let mut live: Vec<(String, Millis)> = Vec::new();
                for (key, until) in w.all::<Millis>(DELIVERIES)? {
                    if until > now {
                        live.push((key, until));
                    } else {
                        w.delete(DELIVERIES, &key)?;
                    }
                }
                live.sort_by_key(|(_, until)| std::cmp::Reverse(*until));
                for (key, _) in live.iter().skip(capacity) {
                    w.delete(DELIVERIES, key)?;
                }
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deliveries_drop_repeats_until_the_horizon_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let seen = Deliveries::new(1000, 3);
        let claim = |source: &'static str, id: String, at: Millis| {
            let (seen, store) = (&seen, &store);
            async move { seen.claim(store, source, &id, at).await.unwrap() }
        };
        assert!(claim("src_a", "d1".into(), 0).await);
        assert!(!claim("src_a", "d1".into(), 999).await);
        assert!(claim("src_b", "d1".into(), 10).await, "ids are per source");
        assert!(
            claim("src_a", "d1".into(), 1000).await,
            "forgotten after the horizon"
        );
        seen.release(&store, "src_a", "d1").await.unwrap();
        assert!(
            claim("src_a", "d1".into(), 1001).await,
            "a released claim is taken again"
        );
        for i in 0..10 {
            assert!(claim("src_c", format!("x{i}"), 1002).await);
        }
        let kept: Vec<(String, Millis)> = store.read(|r| r.all(DELIVERIES)).await.unwrap();
        assert!(kept.len() <= 3, "bounded: {kept:?}");
    }
}
