//! The in-process queue: the default for `recheck serve`, where the workers
//! live in the same process as the dispatcher. Exact earliest-deadline-first
//! per tenant (a binary heap each), round-robin across tenants, leases on a
//! monotonic clock.
//!
//! It keeps nothing on disk on purpose. Persistence comes from the embedded
//! store: its outbox holds every job that is queued or running, and on start
//! the dispatcher re-enqueues them (the seam is simply `enqueue`; attempts
//! and dead letters are recorded in the store's job states). A restart
//! therefore loses leases, which is at-least-once as usual.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{
    Backlog, DeadLetter, Delivery, Depth, Enqueued, ErrorKind, LeaseToken, Priority, Queue,
    QueueError, QueueOptions, QueuedJob, RoundRobin, TenantLimit,
};

pub struct MemoryQueue {
    options: QueueOptions,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every job in the queue (ready, delayed or leased) by entry id.
    entries: HashMap<u64, Entry>,
    tenants: BTreeMap<String, TenantQueue>,
    leases: HashMap<u64, Lease>,
    dedup: HashMap<String, Instant>,
    /// When `dedup` is next swept of expired keys (it doubles, so sweeping is
    /// amortised constant time per enqueue).
    dedup_sweep_at: usize,
    dead: BTreeMap<u64, DeadLetter>,
    next_id: u64,
    cursor: usize,
    paused: std::collections::BTreeSet<String>,
    overrides: BTreeMap<String, TenantLimit>,
}

struct Entry {
    job: QueuedJob,
    deliveries: u32,
    enqueued: DateTime<Utc>,
}

#[derive(Default)]
struct TenantQueue {
    /// Most urgent on top: earliest deadline, then priority, then FIFO.
    ready: BinaryHeap<Reverse<(DateTime<Utc>, Priority, u64)>>,
    /// Nacked with a delay: (visible again at, entry id).
    delayed: Vec<(Instant, u64)>,
    leased: u64,
    dead: u64,
    /// When its recent deliveries were made (for the per-second limit).
    recent: VecDeque<Instant>,
}

struct Lease {
    /// Distinguishes this lease from later ones of the same entry, so a
    /// token from an expired lease is refused.
    generation: u64,
    expires: Instant,
}

const DEDUP_SWEEP_MIN: usize = 1024;

impl MemoryQueue {
    pub fn new(options: QueueOptions) -> Self {
        MemoryQueue {
            options,
            state: Mutex::new(State {
                dedup_sweep_at: DEDUP_SWEEP_MIN,
                ..State::default()
            }),
        }
    }

    /// The state with expired leases and elapsed delays already returned to
    /// their tenants' ready heaps. A panic while holding the lock cannot leave
    /// the state half-updated in a way later calls depend on, so a poisoned
    /// lock is taken over.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.release_due(Instant::now());
        state
    }
}

impl MemoryQueue {
    /// The tenant's most urgent job if it is below its limits, counted as one
    /// more delivery; jobs out of deliveries are dead-lettered on the way.
    fn take_one(
        &self,
        st: &mut State,
        tenant: &str,
        now: Instant,
    ) -> Option<(u64, QueuedJob, u32)> {
        let limit = st
            .overrides
            .get(tenant)
            .copied()
            .unwrap_or_default()
            .over(self.options.tenant_limits.limit(tenant));
        if st.paused.contains(tenant) {
            return None;
        }
        loop {
            let tq = st.tenants.get_mut(tenant)?;
            while tq
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                tq.recent.pop_front();
            }
            let full = |used: u64, limit: Option<u32>| limit.is_some_and(|l| used >= u64::from(l));
            if full(tq.leased, limit.concurrency) || full(tq.recent.len() as u64, limit.per_second)
            {
                if !tq.ready.is_empty() {
                    crate::metrics::get().throttled(tenant);
                }
                return None;
            }
            let Reverse((_, _, id)) = tq.ready.pop()?;
            let Some(e) = st.entries.get_mut(&id) else {
                continue;
            };
            if e.deliveries >= self.options.max_deliver {
                let reason = max_deliver_reason(e.deliveries, self.options.max_deliver);
                crate::metrics::get().max_deliver_dead_lettered(&e.job.tenant);
                st.bury(id, reason);
                continue;
            }
            e.deliveries += 1;
            tq.recent.push_back(now);
            return Some((id, e.job.clone(), e.deliveries));
        }
    }
}

impl State {
    fn release_due(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.leases.remove(&id);
            self.unlease(id);
            self.make_ready(id);
        }
        let mut due = Vec::new();
        for tq in self.tenants.values_mut() {
            tq.delayed.retain(|&(at, id)| {
                let ready = at <= now;
                if ready {
                    due.push(id);
                }
                !ready
            });
        }
        for id in due {
            self.make_ready(id);
        }
    }

    fn tenant(&mut self, id: u64) -> Option<&mut TenantQueue> {
        let tenant = &self.entries.get(&id)?.job.tenant;
        self.tenants.get_mut(tenant)
    }

    fn make_ready(&mut self, id: u64) {
        let Some(e) = self.entries.get(&id) else {
            return;
        };
        let key = Reverse((e.job.deadline, e.job.priority, id));
        if let Some(tq) = self.tenant(id) {
            tq.ready.push(key);
        }
    }

    fn unlease(&mut self, id: u64) {
        if let Some(tq) = self.tenant(id) {
            tq.leased = tq.leased.saturating_sub(1);
        }
    }

    /// The entry behind a live lease.
    fn leased(&mut self, token: &LeaseToken) -> Result<(u64, &mut Lease), QueueError> {
        let lost = || QueueError::new(ErrorKind::LeaseLost, format!("lease {}", token.as_str()));
        let (id, generation) = token
            .as_str()
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
            .ok_or_else(lost)?;
        match self.leases.get_mut(&id) {
            Some(l) if l.generation == generation => Ok((id, l)),
            _ => Err(lost()),
        }
    }

    /// The entry behind a live lease, ending the lease.
    fn take_lease(&mut self, token: &LeaseToken) -> Result<u64, QueueError> {
        let (id, _) = self.leased(token)?;
        self.leases.remove(&id);
        self.unlease(id);
        Ok(id)
    }

    fn bury(&mut self, id: u64, reason: String) {
        let Some(e) = self.entries.remove(&id) else {
            return;
        };
        if let Some(tq) = self.tenants.get_mut(&e.job.tenant) {
            tq.dead += 1;
        }
        let dead_id = self.next_id;
        self.next_id += 1;
        self.dead.insert(
            dead_id,
            DeadLetter {
                id: dead_id.to_string(),
                job: e.job,
                reason,
                deliveries: e.deliveries,
                dead_lettered_at: Utc::now(),
            },
        );
    }

    fn push(&mut self, job: QueuedJob) {
        let id = self.next_id;
        self.next_id += 1;
        self.tenants.entry(job.tenant.clone()).or_default();
        self.entries.insert(
            id,
            Entry {
                job,
                deliveries: 0,
                enqueued: Utc::now(),
            },
        );
        self.make_ready(id);
    }
}

#[async_trait::async_trait]
impl Queue for MemoryQueue {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn enqueue(&self, job: QueuedJob) -> Result<Enqueued, QueueError> {
        job.validate()?;
        let now = Instant::now();
        let mut st = self.state();
        let key = job.dedup_key();
        if st.dedup.get(&key).is_some_and(|until| *until > now) {
            return Ok(Enqueued::Duplicate);
        }
        if st.dedup.len() >= st.dedup_sweep_at {
            st.dedup.retain(|_, until| *until > now);
            st.dedup_sweep_at = (st.dedup.len() * 2).max(DEDUP_SWEEP_MIN);
        }
        st.dedup.insert(key, now + self.options.dedup_window);
        st.push(job);
        Ok(Enqueued::Accepted)
    }

    async fn lease(&self, _consumer: &str, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let now = Instant::now();
        let mut st = self.state();
        let names: Vec<String> = st.tenants.keys().cloned().collect();
        let mut rr = RoundRobin::new(names.len(), st.cursor, max);
        let mut out = Vec::new();
        while let Some((t, quota)) = rr.next() {
            let mut taken = 0;
            while taken < quota {
                let Some((id, job, deliveries)) = self.take_one(&mut st, &names[t], now) else {
                    break;
                };
                taken += 1;
                let generation = st.next_id;
                st.next_id += 1;
                st.leases.insert(
                    id,
                    Lease {
                        generation,
                        expires: now + self.options.lease,
                    },
                );
                if let Some(tq) = st.tenants.get_mut(&names[t]) {
                    tq.leased += 1;
                }
                out.push(Delivery {
                    token: LeaseToken(format!("{id}:{generation}")),
                    job,
                    deliveries,
                });
            }
            rr.took(t, taken, quota);
        }
        st.cursor = rr.cursor();
        Ok(out)
    }

    async fn ack(&self, token: &LeaseToken) -> Result<(), QueueError> {
        let mut st = self.state();
        let id = st.take_lease(token)?;
        st.entries.remove(&id);
        Ok(())
    }

    async fn nak(&self, token: &LeaseToken, delay: Duration) -> Result<(), QueueError> {
        let mut st = self.state();
        let id = st.take_lease(token)?;
        if delay.is_zero() {
            st.make_ready(id);
        } else if let Some(tq) = st.tenant(id) {
            tq.delayed.push((Instant::now() + delay, id));
        }
        Ok(())
    }

    async fn extend(&self, token: &LeaseToken) -> Result<(), QueueError> {
        let mut st = self.state();
        let (_, lease) = st.leased(token)?;
        lease.expires = Instant::now() + self.options.lease;
        Ok(())
    }

    async fn dead_letter(&self, token: &LeaseToken, reason: &str) -> Result<(), QueueError> {
        let mut st = self.state();
        let id = st.take_lease(token)?;
        st.bury(id, reason.to_string());
        Ok(())
    }

    async fn list_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let st = self.state();
        Ok(st.dead.values().take(limit).cloned().collect())
    }

    async fn replay_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        let mut st = self.state();
        let dead = id
            .parse::<u64>()
            .ok()
            .and_then(|n| st.dead.remove(&n))
            .ok_or_else(|| QueueError::new(ErrorKind::NotFound, format!("dead letter {id}")))?;
        if let Some(tq) = st.tenants.get_mut(&dead.job.tenant) {
            tq.dead = tq.dead.saturating_sub(1);
        }
        st.push(dead.job);
        Ok(())
    }

    async fn depth(&self, tenant: &str) -> Result<Depth, QueueError> {
        let st = self.state();
        Ok(st
            .tenants
            .get(tenant)
            .map(|tq| Depth {
                pending: (tq.ready.len() + tq.delayed.len()) as u64,
                leased: tq.leased,
                dead_lettered: tq.dead,
            })
            .unwrap_or_default())
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, QueueError> {
        let st = self.state();
        let mut out: BTreeMap<&str, Backlog> = BTreeMap::new();
        for (name, tq) in &st.tenants {
            let mut b = Backlog {
                tenant: name.clone(),
                ready: [0; 3],
                oldest: None,
            };
            for Reverse((_, priority, id)) in &tq.ready {
                let live = st.entries.contains_key(id) && !st.leases.contains_key(id);
                if let Some(i) = Priority::ALL
                    .iter()
                    .position(|p| p == priority)
                    .filter(|_| live)
                {
                    b.ready[i] += 1;
                }
            }
            out.insert(name, b);
        }
        for e in st.entries.values() {
            if let Some(b) = out.get_mut(e.job.tenant.as_str()) {
                b.oldest = Some(b.oldest.map_or(e.enqueued, |o| o.min(e.enqueued)));
            }
        }
        Ok(out.into_values().collect())
    }

    async fn set_paused(&self, tenant: &str, paused: bool) -> Result<(), QueueError> {
        let mut st = self.state();
        if paused {
            st.paused.insert(tenant.to_string());
        } else {
            st.paused.remove(tenant);
        }
        Ok(())
    }

    async fn paused(&self, tenant: &str) -> Result<bool, QueueError> {
        Ok(self.state().paused.contains(tenant))
    }

    async fn set_limit(&self, tenant: &str, limit: TenantLimit) -> Result<(), QueueError> {
        self.state().overrides.insert(tenant.to_string(), limit);
        Ok(())
    }

    async fn limit(&self, tenant: &str) -> Result<TenantLimit, QueueError> {
        let own = self.state().overrides.get(tenant).copied();
        Ok(own
            .unwrap_or_default()
            .over(self.options.tenant_limits.limit(tenant)))
    }

    async fn purge(&self) -> Result<(), QueueError> {
        let mut st = self.state();
        *st = State {
            dedup_sweep_at: DEDUP_SWEEP_MIN,
            ..State::default()
        };
        Ok(())
    }
}

/// The reason recorded when a job runs out of deliveries, the same words on
/// every backend.
pub(super) fn max_deliver_reason(delivered: u32, max_deliver: u32) -> String {
    format!("delivered {delivered} times without success (max_deliver {max_deliver})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn job(id: u8, priority: Priority, deadline_h: i64) -> QueuedJob {
        QueuedJob {
            job_id: format!("{id:02x}"),
            attempt: 1,
            tenant: "t".into(),
            priority,
            deadline: Utc
                .timestamp_opt(1_700_000_000 + deadline_h * 3600, 0)
                .unwrap(),
            payload: vec![id],
        }
    }

    /// Stricter than the stream backends (see the module docs of `queue`):
    /// within one class too, the earliest deadline goes first, whatever the
    /// enqueue order, and a late-planned normal job whose deadline is nearer
    /// than a high one's goes before it.
    #[tokio::test]
    async fn exact_edf_regardless_of_class_and_enqueue_order() {
        let q = MemoryQueue::new(QueueOptions::default());
        for j in [
            job(1, Priority::Normal, 30),
            job(2, Priority::High, 5),
            job(3, Priority::Normal, 2),
            job(4, Priority::High, 4),
            job(5, Priority::Emergency, 1),
        ] {
            q.enqueue(j).await.unwrap();
        }
        let order: Vec<u8> = q
            .lease("w", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.job.payload[0])
            .collect();
        assert_eq!(order, vec![5, 3, 4, 2, 1]);
    }

    #[tokio::test]
    async fn a_token_from_an_expired_lease_is_refused() {
        let q = MemoryQueue::new(QueueOptions {
            lease: Duration::from_millis(50),
            ..QueueOptions::default()
        });
        q.enqueue(job(1, Priority::Normal, 1)).await.unwrap();
        let first = q.lease("a", 1).await.unwrap().remove(0);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let second = q.lease("b", 1).await.unwrap().remove(0);
        assert_eq!(second.deliveries, 2);
        let err = q.ack(&first.token).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::LeaseLost);
        q.ack(&second.token).await.unwrap();
        assert_eq!(q.depth("t").await.unwrap(), Depth::default());
    }
}
