//! The queue between the dispatcher and the workers: one small trait, three
//! backends (in-process, NATS JetStream, Redis Streams), one conformance suite
//! (`tests/queue_conformance.rs`) that all of them pass.
//!
//! The queue is not the source of truth: the store's outbox is. A queue that
//! loses its contents (a restarted process, a Redis without persistence) is
//! refilled by the dispatcher re-enqueueing every job the store still has as
//! queued or running. That is also why the in-process backend keeps nothing
//! on disk. Delivery is at-least-once; workers fence duplicates with the
//! store's compare-and-set job transitions, so a stale acknowledgement (after
//! the lease expired and the job went to someone else) may or may not be
//! refused by a backend and must not be relied on.
//!
//! What every backend guarantees (and the suite checks):
//! - de-duplication of `(job_id, attempt)` within [`QueueOptions::dedup_window`];
//! - a leased job that is neither acked, nacked nor dead-lettered comes back
//!   after [`QueueOptions::lease`];
//! - a job delivered more than [`QueueOptions::max_deliver`] times is moved to
//!   the dead-letter list instead of being handed out again;
//! - within a tenant, more urgent work first: exact earliest-deadline-first in
//!   memory; on the stream backends, which are FIFO, one stream/subject per
//!   [`Priority`] class served most urgent first and FIFO within a class. The
//!   planner derives a deadline as planning time + the class's SLA, so FIFO
//!   within a class is EDF unless two SLAs share a class;
//! - across tenants, round-robin: equal shares per round of a lease;
//! - a tenant at its concurrency limit or its deliveries-per-second limit
//!   ([`TenantLimits`]) is skipped, and so is a paused tenant
//!   ([`Queue::set_paused`]).

pub mod bench;
pub mod memory;
pub mod nats;
pub mod redis;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// How urgent a job is. The order is most urgent first, so sorting ascending
/// serves emergencies before normal work. Names follow the seed system's
/// policy-run priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Emergency,
    High,
    Normal,
}

impl Priority {
    /// Every class, most urgent first (the order the stream backends poll).
    pub const ALL: [Priority; 3] = [Priority::Emergency, Priority::High, Priority::Normal];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "emergency",
            Priority::High => "high",
            Priority::Normal => "normal",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What travels through the queue: the routing facts the queue needs to order
/// and fence work, and the job itself as opaque bytes (the store's canonical
/// JSON of the `RecheckJob`), which the queue never parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// Lower-case hex job id (sha256, assigned by the planner).
    pub job_id: String,
    /// 1 for the first run; a retry is a new attempt of the same job id.
    pub attempt: u32,
    pub tenant: String,
    pub priority: Priority,
    /// The SLA deadline.
    pub deadline: DateTime<Utc>,
    pub payload: Vec<u8>,
}

impl QueuedJob {
    /// The de-duplication key (also JetStream's `Nats-Msg-Id`).
    pub fn dedup_key(&self) -> String {
        format!("{}:{}", self.job_id, self.attempt)
    }

    fn validate(&self) -> Result<(), QueueError> {
        if self.job_id.is_empty()
            || !self
                .job_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(QueueError::new(
                ErrorKind::InvalidJob,
                format!("job id {:?} is not lower-case hex", self.job_id),
            ));
        }
        Ok(())
    }
}

/// RFC 3339 in UTC with as many fraction digits as needed, so a deadline
/// survives a trip through a stream backend unchanged.
fn format_deadline(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_deadline(s: &str) -> Result<DateTime<Utc>, QueueError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| QueueError::new(ErrorKind::Codec, format!("deadline {s:?}: {e}")))
}

/// A short, fixed-alphabet name for a tenant, usable in NATS subjects, stream
/// and consumer names and Redis keys whatever characters the tenant has.
fn tenant_key(tenant: &str) -> String {
    hex::encode(&Sha256::digest(tenant.as_bytes())[..8])
}

/// Proof of a lease, handed back to `ack`/`nak`/`dead_letter`/`extend`. Its
/// content is the backend's business (opaque to callers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(String);

impl LeaseToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One leased job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub token: LeaseToken,
    pub job: QueuedJob,
    /// How often this job has been handed out, this time included (1 on the
    /// first delivery).
    pub deliveries: u32,
}

/// A job taken out of circulation, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The backend's id of the dead letter, for `replay_dead_letter`.
    pub id: String,
    pub job: QueuedJob,
    pub reason: String,
    /// Deliveries before it was dead-lettered.
    pub deliveries: u32,
    pub dead_lettered_at: DateTime<Utc>,
}

/// What `enqueue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Accepted,
    /// The same `(job_id, attempt)` was enqueued within the de-dup window.
    Duplicate,
}

/// Counts for one tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Waiting to be leased, including jobs waiting out a `nak` delay (on
    /// JetStream those count as leased: the server keeps them pending).
    pub pending: u64,
    /// Leased and not yet acked, nacked or dead-lettered.
    pub leased: u64,
    pub dead_lettered: u64,
}

/// What one tenant has in the queue, for the queue gauges of
/// [`crate::metrics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub tenant: String,
    /// Jobs ready to be leased now, by class in [`Priority::ALL`] order
    /// (leased jobs and retries waiting out a `nak` delay are not ready).
    pub ready: [u64; 3],
    /// When the oldest job the queue holds for the tenant (ready, delayed
    /// or leased) entered it; a retry re-added after its delay counts from
    /// then on the Redis backend, from its first enqueue on the others.
    pub oldest: Option<DateTime<Utc>>,
}

/// How much of the workers one tenant may hold; `None` = unlimited. A
/// tenant at a limit is skipped by `lease` (others are not held up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantLimit {
    /// At most this many leased jobs at once.
    pub concurrency: Option<u32>,
    /// At most this many deliveries (leases handed out, redeliveries
    /// included) in any one-second window: throttling.
    pub per_second: Option<u32>,
}

impl TenantLimit {
    /// `concurrency,per_second`, -1 for none: how a run-time override is
    /// kept on a queue's server.
    fn encode(self) -> String {
        let none = |v: Option<u32>| v.map_or(-1, i64::from);
        format!("{},{}", none(self.concurrency), none(self.per_second))
    }

    /// The inverse of [`TenantLimit::encode`]; anything unreadable is none.
    fn decode(s: &str) -> TenantLimit {
        let mut parts = s.split(',').map(|p| p.trim().parse::<i64>().ok());
        let mut field = || parts.next().flatten().and_then(|n| u32::try_from(n).ok());
        TenantLimit {
            concurrency: field(),
            per_second: field(),
        }
    }

    /// `self`'s fields where set, else `base`'s.
    pub fn over(self, base: TenantLimit) -> TenantLimit {
        TenantLimit {
            concurrency: self.concurrency.or(base.concurrency),
            per_second: self.per_second.or(base.per_second),
        }
    }
}

/// Limits per tenant; a tenant's own entry overrides the default field by
/// field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantLimits {
    pub default: TenantLimit,
    pub per_tenant: BTreeMap<String, TenantLimit>,
}

impl TenantLimits {
    pub fn limit(&self, tenant: &str) -> TenantLimit {
        let own = self.per_tenant.get(tenant).copied().unwrap_or_default();
        TenantLimit {
            concurrency: own.concurrency.or(self.default.concurrency),
            per_second: own.per_second.or(self.default.per_second),
        }
    }

    /// Whether any tenant has a concurrency limit, and any a rate limit (the
    /// stream backends keep lease or delivery records only then).
    fn kinds(&self) -> (bool, bool) {
        let all = || std::iter::once(&self.default).chain(self.per_tenant.values());
        (
            all().any(|l| l.concurrency.is_some()),
            all().any(|l| l.per_second.is_some()),
        )
    }
}

/// Settings shared by all backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// Namespace for server-side names (stream names, subjects, keys), so
    /// several queues (and tests) share one server. `[A-Za-z0-9_-]` only.
    pub prefix: String,
    /// How long a lease lasts. A queue setting rather than a per-call one:
    /// JetStream's `ack_wait` belongs to the consumer and `XAUTOCLAIM`'s idle
    /// time to the whole scan, so neither could honour a per-call duration.
    /// Long jobs call `extend`.
    pub lease: Duration,
    /// Deliveries after which a job is dead-lettered instead of handed out.
    pub max_deliver: u32,
    /// How long a `(job_id, attempt)` is remembered for de-duplication.
    pub dedup_window: Duration,
    pub tenant_limits: TenantLimits,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            prefix: "recheck".to_string(),
            lease: Duration::from_secs(30),
            max_deliver: 5,
            dedup_window: Duration::from_secs(120),
            tenant_limits: TenantLimits::default(),
        }
    }
}

impl QueueOptions {
    fn validate(&self) -> Result<(), QueueError> {
        let ok = !self.prefix.is_empty()
            && self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(QueueError::new(
                ErrorKind::Config,
                format!("queue prefix {:?} must be [A-Za-z0-9_-]+", self.prefix),
            ));
        }
        if self.lease.is_zero() || self.max_deliver == 0 {
            return Err(QueueError::new(
                ErrorKind::Config,
                "lease and max_deliver must be positive",
            ));
        }
        Ok(())
    }
}

/// The queue seam. All methods are safe to call from many tasks at once.
#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    /// The backend's name for logs and benchmarks (`memory`, `nats`, `redis`).
    fn backend(&self) -> &'static str;

    async fn enqueue(&self, job: QueuedJob) -> Result<Enqueued, QueueError>;

    /// Up to `max` jobs for `consumer` (a worker's name), without waiting:
    /// an empty answer means nothing is available right now.
    async fn lease(&self, consumer: &str, max: usize) -> Result<Vec<Delivery>, QueueError>;

    /// Done: the job leaves the queue.
    async fn ack(&self, token: &LeaseToken) -> Result<(), QueueError>;

    /// Not done: hand the job out again after `delay` (zero = at once).
    async fn nak(&self, token: &LeaseToken, delay: Duration) -> Result<(), QueueError>;

    /// Restart the lease clock (a long job's heartbeat).
    async fn extend(&self, token: &LeaseToken) -> Result<(), QueueError>;

    /// Give up on the job: it moves to the dead-letter list with `reason`.
    async fn dead_letter(&self, token: &LeaseToken, reason: &str) -> Result<(), QueueError>;

    /// The oldest `limit` dead letters, oldest first.
    async fn list_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError>;

    /// Put a dead letter back into the queue (its delivery count starts over;
    /// de-duplication does not apply) and remove it from the list.
    async fn replay_dead_letter(&self, id: &str) -> Result<(), QueueError>;

    async fn depth(&self, tenant: &str) -> Result<Depth, QueueError>;

    /// Every tenant the queue holds jobs for, with what is waiting (sorted
    /// by tenant). A tenant with nothing left may still be listed, at zero.
    async fn backlog(&self) -> Result<Vec<Backlog>, QueueError>;

    /// Stop (`true`) or resume handing out `tenant`'s jobs. The flag lives
    /// with the queue (on its server for NATS and Redis), so every process
    /// leasing from it obeys; jobs keep arriving and wait.
    async fn set_paused(&self, tenant: &str, paused: bool) -> Result<(), QueueError>;

    /// Whether `tenant` is paused.
    async fn paused(&self, tenant: &str) -> Result<bool, QueueError>;

    /// Override `tenant`'s limits at run time, kept with the queue like the
    /// pause flag; a `None` field falls back to the configured limit. On
    /// NATS a limit kind the queue was not opened with (no default or
    /// per-tenant limit of that kind) is refused: its records are not kept.
    async fn set_limit(&self, tenant: &str, limit: TenantLimit) -> Result<(), QueueError>;

    /// `tenant`'s limits in force: the override over the configured ones.
    async fn limit(&self, tenant: &str) -> Result<TenantLimit, QueueError>;

    /// Drop every job, lease, dead letter and de-dup record this queue holds
    /// on its server (tests, and operators starting over). The queue stays
    /// usable.
    async fn purge(&self) -> Result<(), QueueError>;
}

/// Open a queue from a URL: `memory://`, `nats://host:port`,
/// `redis://host:port[/db]`.
pub async fn open(url: &str, options: QueueOptions) -> Result<Arc<dyn Queue>, QueueError> {
    options.validate()?;
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    match scheme {
        "memory" => Ok(Arc::new(memory::MemoryQueue::new(options))),
        "nats" => Ok(Arc::new(nats::NatsQueue::connect(url, options).await?)),
        "redis" => Ok(Arc::new(redis::RedisQueue::connect(url, options).await?)),
        _ => Err(QueueError::new(
            ErrorKind::Config,
            format!("unknown queue URL {url:?}: expected memory://, nats:// or redis://"),
        )),
    }
}

/// The queue layer's error.
#[derive(Debug, thiserror::Error)]
#[error("queue: {kind}: {message}")]
pub struct QueueError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad URL or options.
    Config,
    /// The server could not be reached.
    Connect,
    /// The server refused or failed a command.
    Backend,
    /// A message on the server is not one of ours (missing or bad fields).
    Codec,
    /// The job is not acceptable (e.g. a job id that is not hex).
    InvalidJob,
    /// The lease behind a token is unknown or has expired.
    LeaseLost,
    /// No dead letter with that id.
    NotFound,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Config => "configuration",
            ErrorKind::Connect => "connect",
            ErrorKind::Backend => "backend",
            ErrorKind::Codec => "codec",
            ErrorKind::InvalidJob => "invalid job",
            ErrorKind::LeaseLost => "lease lost",
            ErrorKind::NotFound => "not found",
        })
    }
}

impl QueueError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        QueueError {
            kind,
            message: message.into(),
        }
    }
}

/// Round-robin over tenants, in rounds: each round every tenant still in the
/// running gets an equal share of what is left to lease (at least one), and a
/// tenant that gives less than its share (nothing left, or at its limit)
/// drops out. With one job per lease that is plain alternation; with a batch
/// it is the same split, fetched in one go per tenant and round (one round
/// trip on a stream backend instead of one per job). Backends drive it:
/// `next` names the tenant (an index into their sorted tenant list) and its
/// share, `took` reports how many it gave. The rotation carries over between
/// leases (`cursor`), so consecutive single leases alternate too.
struct RoundRobin {
    n: usize,
    round: std::collections::VecDeque<usize>,
    next_round: Vec<usize>,
    share: usize,
    remaining: usize,
    cursor: usize,
}

impl RoundRobin {
    fn new(n: usize, cursor: usize, max: usize) -> Self {
        let start = if n == 0 { 0 } else { cursor % n };
        RoundRobin {
            n,
            round: std::collections::VecDeque::new(),
            next_round: (0..n).map(|i| (start + i) % n).collect(),
            share: 0,
            remaining: max,
            cursor: start,
        }
    }

    fn next(&mut self) -> Option<(usize, usize)> {
        if self.remaining == 0 {
            return None;
        }
        if self.round.is_empty() {
            if self.next_round.is_empty() {
                return None;
            }
            self.round = std::mem::take(&mut self.next_round).into();
            self.share = (self.remaining / self.round.len()).max(1);
        }
        let tenant = self.round.pop_front()?;
        Some((tenant, self.share.min(self.remaining)))
    }

    fn took(&mut self, tenant: usize, taken: usize, share: usize) {
        if taken > 0 {
            self.remaining = self.remaining.saturating_sub(taken);
            self.cursor = (tenant + 1) % self.n;
        }
        if taken >= share {
            self.next_round.push(tenant);
        }
    }

    fn cursor(&self) -> usize {
        self.cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(n: usize, cursor: usize, max: usize, stock: &mut [usize]) -> (Vec<usize>, usize) {
        let mut rr = RoundRobin::new(n, cursor, max);
        let mut got = Vec::new();
        while let Some((t, quota)) = rr.next() {
            let taken = quota.min(stock[t]);
            stock[t] -= taken;
            got.extend(std::iter::repeat_n(t, taken));
            rr.took(t, taken, quota);
        }
        (got, rr.cursor())
    }

    #[test]
    fn round_robin_alternates_and_drops_empty_tenants() {
        let mut stock = [5, 1, 3];
        let (got, cursor) = drive(3, 0, 7, &mut stock);
        // Round one: shares of 2; tenant 1 has only one and drops out.
        // Round two: shares of 1 for the two left.
        assert_eq!(got, vec![0, 0, 1, 2, 2, 0, 2]);
        assert_eq!(cursor, 0);
        // The rotation carries over: the next lease starts after tenant 2.
        let (got, _) = drive(3, cursor, 1, &mut stock);
        assert_eq!(got, vec![0]);
    }

    #[test]
    fn single_leases_alternate() {
        let mut stock = [3, 3];
        let mut cursor = 0;
        let mut order = Vec::new();
        for _ in 0..4 {
            let (got, c) = drive(2, cursor, 1, &mut stock);
            order.extend(got);
            cursor = c;
        }
        assert_eq!(order, vec![0, 1, 0, 1]);
    }

    #[test]
    fn priority_names_round_trip_and_order() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
        }
        assert!(Priority::Emergency < Priority::High && Priority::High < Priority::Normal);
        assert_eq!(Priority::parse("urgent"), None);
    }

    #[test]
    fn options_and_jobs_are_validated() {
        let bad = QueueOptions {
            prefix: "a.b".into(),
            ..QueueOptions::default()
        };
        assert_eq!(bad.validate().unwrap_err().kind, ErrorKind::Config);
        assert!(QueueOptions::default().validate().is_ok());
        let job = QueuedJob {
            job_id: "ABC".into(),
            attempt: 1,
            tenant: "t".into(),
            priority: Priority::Normal,
            deadline: Utc::now(),
            payload: vec![],
        };
        assert_eq!(job.validate().unwrap_err().kind, ErrorKind::InvalidJob);
    }
}
