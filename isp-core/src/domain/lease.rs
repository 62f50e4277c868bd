//! Claims on due work: who holds an item and until when.

use chrono::{DateTime, Utc};

/// A claim on an item: who holds it and until when. An expired lease is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Holder (a daemon id, or `retry` for a back-off).
    pub holder: String,
    /// Free again after this instant.
    pub until: DateTime<Utc>,
}

/// What a claimant asks for when it claims due work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Claimant id (unique per daemon).
    pub holder: String,
    /// The current time (from the `Clock`).
    pub now: DateTime<Utc>,
    /// Lease expiry: if the claimant dies, the item is free again after this.
    pub until: DateTime<Utc>,
    /// Most items to claim.
    pub limit: usize,
}
