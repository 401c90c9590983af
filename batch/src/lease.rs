//! Interval leases: two schedulers on the same deep storage never reindex the same interval at
//! once.
//!
//! A lease is a generation file in the interval's lease directory, taken create-only, holding
//! its holder and expiry. Taking a lease reads the newest generation: if it is unexpired,
//! someone else holds the interval; otherwise the taker creates the next generation, and of two
//! takers racing for it exactly one wins. The holder renews by creating the generation after
//! its own (so a holder whose lease expired and was taken over learns it on renewal) and
//! releases by deleting its file. The catalog's commit checks keep a batch version correct
//! even if a lease is lost; the lease only saves the work of running an interval twice.

use std::time::Duration;

use bytes::Bytes;
use common::catalog::now_millis;
use common::storage::{DeepStorage, StorageError};
use common::time::{Interval, Millis, format_iso};
use layouts::{DataSourceName, lease_dir, lease_path, parse_lease_generation};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::BatchError;

/// What a lease file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRecord {
    /// Who holds it (host, process and run).
    pub holder: String,
    /// When it stops protecting the interval, UTC ms.
    pub expires: Millis,
    /// The same instant in ISO 8601, for people reading the file.
    pub expires_iso: String,
}

/// The outcome of trying to take a lease.
#[derive(Debug)]
pub enum Acquired {
    /// The interval is ours until the lease expires.
    Held(Lease),
    /// Someone else holds it.
    Busy(LeaseRecord),
}

/// A lease this process holds.
#[derive(Debug)]
pub struct Lease {
    storage: DeepStorage,
    data_source: DataSourceName,
    interval: Interval,
    generation: u64,
    holder: String,
    ttl: Duration,
}

impl Lease {
    /// Tries to take the lease of one interval for `ttl`.
    pub async fn acquire(
        storage: &DeepStorage,
        data_source: &DataSourceName,
        interval: Interval,
        holder: &str,
        ttl: Duration,
    ) -> Result<Acquired, BatchError> {
        let dir = lease_dir(data_source, interval.start, interval.end).map_err(invalid)?;
        let mut generations: Vec<(u64, String)> = storage
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|o| parse_lease_generation(&o.path).ok().map(|g| (g, o.path)))
            .collect();
        generations.sort();
        let newest = generations.last().map_or(0, |(g, _)| *g);
        if let Some((_, path)) = generations.last()
            && let Some(record) = read_record(storage, path).await?
            && record.expires > now_millis()
        {
            return Ok(Acquired::Busy(record));
        }
        let lease = Lease {
            storage: storage.clone(),
            data_source: data_source.clone(),
            interval,
            generation: newest + 1,
            holder: holder.to_string(),
            ttl,
        };
        match lease.write_generation(lease.generation).await {
            Ok(()) => {}
            Err(BatchError::Storage(StorageError::AlreadyExists { .. })) => {
                // Another scheduler took this generation a moment ago.
                let path = lease.path(lease.generation)?;
                let record = read_record(storage, &path).await?.unwrap_or(LeaseRecord {
                    holder: "another scheduler".into(),
                    expires: now_millis() + ttl.as_millis() as i64,
                    expires_iso: String::new(),
                });
                return Ok(Acquired::Busy(record));
            }
            Err(e) => return Err(e),
        }
        // Older generations are history now.
        for (_, path) in generations {
            lease.delete_quietly(&path).await;
        }
        debug!(%interval, generation = lease.generation, "Took the interval's lease.");
        Ok(Acquired::Held(lease))
    }

    /// Extends the lease by its time to live from now; false when another scheduler took the
    /// interval over (this lease had expired).
    pub async fn renew(&mut self) -> Result<bool, BatchError> {
        let next = self.generation + 1;
        match self.write_generation(next).await {
            Ok(()) => {
                let old = self.path(self.generation)?;
                self.delete_quietly(&old).await;
                self.generation = next;
                Ok(true)
            }
            Err(BatchError::Storage(StorageError::AlreadyExists { .. })) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the interval back.
    pub async fn release(self) {
        if let Ok(path) = self.path(self.generation) {
            self.delete_quietly(&path).await;
        }
    }

    /// How often to renew: a third of the time to live, so one failed renewal is survivable.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    fn path(&self, generation: u64) -> Result<String, BatchError> {
        lease_path(&self.data_source, self.interval.start, self.interval.end, generation).map_err(invalid)
    }

    async fn write_generation(&self, generation: u64) -> Result<(), BatchError> {
        let expires = now_millis() + self.ttl.as_millis() as i64;
        let record = LeaseRecord { holder: self.holder.clone(), expires, expires_iso: format_iso(expires) };
        let json = serde_json::to_vec_pretty(&record).expect("lease records serialize");
        self.storage.put_create(&self.path(generation)?, Bytes::from(json)).await?;
        Ok(())
    }

    async fn delete_quietly(&self, path: &str) {
        if let Err(e) = self.storage.delete(path).await {
            // An expired generation left behind only costs a listing entry.
            warn!(path, error = %e, "Could not remove an old lease generation.");
        }
    }
}

/// A lease file's record; a file that vanished (released meanwhile) or cannot be read counts
/// as no lease, since an unreadable lease would otherwise block the interval forever.
async fn read_record(storage: &DeepStorage, path: &str) -> Result<Option<LeaseRecord>, BatchError> {
    match storage.get(path).await {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                warn!(path, error = %e, "Ignoring an unreadable lease file.");
                Ok(None)
            }
        },
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn invalid(e: layouts::LayoutError) -> BatchError {
    BatchError::InvalidRequest(e.to_string())
}

/// Who this process is, for lease files and run records: host name and process id.
pub fn process_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 1_377_907_200_000;

    fn setup() -> (DeepStorage, DataSourceName, Interval) {
        let storage = DeepStorage::open("memory://").unwrap();
        (storage, DataSourceName::new("wiki").unwrap(), Interval { start: DAY, end: DAY + 3_600_000 })
    }

    #[tokio::test]
    async fn one_holder_at_a_time_until_release() {
        let (storage, ds, interval) = setup();
        let ttl = Duration::from_secs(60);
        let Acquired::Held(first) = Lease::acquire(&storage, &ds, interval, "a", ttl).await.unwrap() else {
            panic!("a free interval's lease is taken");
        };
        match Lease::acquire(&storage, &ds, interval, "b", ttl).await.unwrap() {
            Acquired::Busy(record) => assert_eq!(record.holder, "a"),
            Acquired::Held(_) => panic!("two holders"),
        }
        // Another interval is independent.
        let other = Interval { start: interval.end, end: interval.end + 3_600_000 };
        assert!(matches!(Lease::acquire(&storage, &ds, other, "b", ttl).await.unwrap(), Acquired::Held(_)));
        first.release().await;
        assert!(matches!(
            Lease::acquire(&storage, &ds, interval, "b", ttl).await.unwrap(),
            Acquired::Held(_)
        ));
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_holder_learns_it_on_renewal() {
        let (storage, ds, interval) = setup();
        let Acquired::Held(mut stale) =
            Lease::acquire(&storage, &ds, interval, "a", Duration::ZERO).await.unwrap()
        else {
            panic!("free interval");
        };
        let Acquired::Held(mut fresh) =
            Lease::acquire(&storage, &ds, interval, "b", Duration::from_secs(60)).await.unwrap()
        else {
            panic!("an expired lease is free");
        };
        assert!(!stale.renew().await.unwrap(), "the stale holder lost the interval");
        assert!(fresh.renew().await.unwrap());
        assert!(matches!(
            Lease::acquire(&storage, &ds, interval, "c", Duration::from_secs(60)).await.unwrap(),
            Acquired::Busy(r) if r.holder == "b"
        ));
        let files = storage.list(&lease_dir(&ds, interval.start, interval.end).unwrap()).await.unwrap();
        assert_eq!(files.len(), 1, "old generations are removed: {files:?}");
    }

    #[tokio::test]
    async fn racing_takers_get_one_lease() {
        let (storage, ds, interval) = setup();
        let ttl = Duration::from_secs(60);
        let attempts = (0..8).map(|i| {
            let storage = storage.clone();
            let ds = ds.clone();
            async move { Lease::acquire(&storage, &ds, interval, &format!("t{i}"), ttl).await.unwrap() }
        });
        let outcomes = futures::future::join_all(attempts).await;
        let held = outcomes.iter().filter(|o| matches!(o, Acquired::Held(_))).count();
        assert_eq!(held, 1);
    }
}
