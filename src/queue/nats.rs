//! NATS JetStream backend: many `recheck worker` processes share one NATS.
//!
//! Layout under the prefix `P` (tenant `t` = [`super::tenant_key`]):
//! - stream `P_JOBS` (work-queue retention: an acked job is gone), subjects
//!   `P.job.<t>.<class>`, published with `Nats-Msg-Id` = `job_id:attempt` so
//!   the server drops duplicates within its `duplicate_window`
//!   ([`QueueOptions::dedup_window`]). A stream is FIFO, so urgency within a
//!   tenant comes from one subject per [`super::Priority`] class, each read
//!   by its own durable pull consumer `P_<t>_<class>` (explicit ack,
//!   `ack_wait` = the lease, unlimited `max_deliver`), most urgent first;
//! - stream `P_DLQ`, subjects `P.dlq.<t>`: dead letters with the reason in
//!   headers. JetStream has no dead-letter stream of its own: when a job is
//!   fetched for the `max_deliver + 1`-th time Recheck moves it there (and
//!   the server never stops redelivering, so a crash in between only delays
//!   the move);
//! - stream `P_LEASE` (only with concurrency limits), subjects
//!   `P.lease.<t>.<seq>`, `max_age` = the lease: one record per live lease,
//!   so a tenant's in-flight count is one subject count away and leases of a
//!   crashed worker drop out by themselves. The consumers' own
//!   `num_ack_pending` would not do: it also counts expired leases (a tenant
//!   at its limit would then never see them redelivered) and jobs waiting out
//!   a `nak` delay;
//! - stream `P_RECENT` (only with per-second limits), `max_age` 1 s: one
//!   record per delivery, the tenant's deliveries of the last second;
//! - stream `P_CONTROL`, subjects `P.paused.<t>`: a message while tenant `t`
//!   is paused (purged on resume), so one subject count lists them all; and
//!   `P.limit.<t>`: the tenant's run-time limits, the latest message kept.
//!
//! Worker processes racing for a tenant's last slot can overshoot a limit by
//! one each (the count and the fetch are two steps); the leases of one
//! process take turns while limits are kept, so its slots cannot.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream, AckKind};
use async_nats::HeaderMap;
use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::Mutex;

use super::memory::max_deliver_reason;
use super::{
    format_deadline, parse_deadline, tenant_key, Backlog, DeadLetter, Delivery, Depth, Enqueued,
    ErrorKind, LeaseToken, Priority, Queue, QueueError, QueueOptions, QueuedJob, RoundRobin,
    TenantLimit,
};

const H_JOB_ID: &str = "Recheck-Job-Id";
const H_ATTEMPT: &str = "Recheck-Attempt";
const H_TENANT: &str = "Recheck-Tenant";
const H_PRIORITY: &str = "Recheck-Priority";
const H_DEADLINE: &str = "Recheck-Deadline";
const H_REASON: &str = "Recheck-Reason";
const H_DELIVERIES: &str = "Recheck-Deliveries";
const H_DEAD_AT: &str = "Recheck-Dead-Lettered-At";
const MSG_ID: &str = "Nats-Msg-Id";
/// The longest one fetch of a lease may take.
const FETCH_WAIT: Duration = Duration::from_secs(2);

pub struct NatsQueue {
    options: QueueOptions,
    client: async_nats::Client,
    js: jetstream::Context,
    /// Per-tenant limits by tenant key (subjects carry keys, not names).
    limits: HashMap<String, TenantLimit>,
    /// Created on first use, dropped by `purge`.
    streams: Mutex<Option<Streams>>,
    consumers: Mutex<HashMap<String, consumer::PullConsumer>>,
    cursor: AtomicUsize,
    /// Taken by a lease while limits are kept (lease or delivery records),
    /// so the slots of one process count and fetch one at a time.
    lease_turn: Mutex<()>,
}

#[derive(Clone)]
struct Streams {
    jobs: stream::Stream,
    dlq: stream::Stream,
    control: stream::Stream,
    leases: Option<stream::Stream>,
    recent: Option<stream::Stream>,
}

fn backend(what: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError::new(ErrorKind::Backend, format!("nats: {what}: {e}"))
}

fn codec(what: impl Into<String>) -> QueueError {
    QueueError::new(ErrorKind::Codec, format!("nats: {}", what.into()))
}

fn lost(token: &LeaseToken) -> QueueError {
    QueueError::new(ErrorKind::LeaseLost, format!("lease {}", token.as_str()))
}

/// What a lease token carries: the job's stream sequence (to find it for
/// dead-lettering), its delivery count, its tenant key (for the lease
/// record) and the ack subject, so that settling a lease needs no look-up.
struct TokenParts<'a> {
    seq: u64,
    deliveries: u32,
    tenant: &'a str,
    reply: &'a str,
}

impl<'a> TokenParts<'a> {
    fn encode(seq: u64, deliveries: u32, tenant: &str, reply: &str) -> LeaseToken {
        LeaseToken(format!("{seq}|{deliveries}|{tenant}|{reply}"))
    }

    fn decode(token: &'a LeaseToken) -> Result<Self, QueueError> {
        let mut parts = token.as_str().splitn(4, '|');
        let (Some(seq), Some(deliveries), Some(tenant), Some(reply)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(lost(token));
        };
        Ok(TokenParts {
            seq: seq.parse().map_err(|_| lost(token))?,
            deliveries: deliveries.parse().map_err(|_| lost(token))?,
            tenant,
            reply,
        })
    }
}

fn job_headers(job: &QueuedJob) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(H_JOB_ID, job.job_id.as_str());
    h.insert(H_ATTEMPT, job.attempt.to_string().as_str());
    h.insert(H_TENANT, job.tenant.as_str());
    h.insert(H_PRIORITY, job.priority.as_str());
    h.insert(H_DEADLINE, format_deadline(&job.deadline).as_str());
    h
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Result<&'h str, QueueError> {
    h.get(name)
        .map(|v| v.as_str())
        .ok_or_else(|| codec(format!("header {name} missing")))
}

fn number<N: std::str::FromStr>(h: &HeaderMap, name: &str) -> Result<N, QueueError> {
    header(h, name)?
        .parse()
        .map_err(|_| codec(format!("header {name} is not a number")))
}

fn decode_job(headers: Option<&HeaderMap>, payload: &[u8]) -> Result<QueuedJob, QueueError> {
    let h = headers.ok_or_else(|| codec("message without headers"))?;
    Ok(QueuedJob {
        job_id: header(h, H_JOB_ID)?.to_string(),
        attempt: number(h, H_ATTEMPT)?,
        tenant: header(h, H_TENANT)?.to_string(),
        priority: Priority::parse(header(h, H_PRIORITY)?)
            .ok_or_else(|| codec("bad priority header"))?,
        deadline: parse_deadline(header(h, H_DEADLINE)?)?,
        payload: payload.to_vec(),
    })
}

impl NatsQueue {
    pub async fn connect(url: &str, options: QueueOptions) -> Result<Self, QueueError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(3))
            .connect(url)
            .await
            .map_err(|e| QueueError::new(ErrorKind::Connect, format!("nats at {url}: {e}")))?;
        let js = jetstream::new(client.clone());
        let limits = options
            .tenant_limits
            .per_tenant
            .keys()
            .map(|t| (tenant_key(t), options.tenant_limits.limit(t)))
            .collect();
        Ok(NatsQueue {
            options,
            client,
            js,
            limits,
            streams: Mutex::new(None),
            consumers: Mutex::new(HashMap::new()),
            cursor: AtomicUsize::new(0),
            lease_turn: Mutex::new(()),
        })
    }

    fn p(&self) -> &str {
        &self.options.prefix
    }

    fn configured_limit(&self, t: &str) -> TenantLimit {
        self.limits
            .get(t)
            .copied()
            .unwrap_or(self.options.tenant_limits.default)
    }

    /// A stream of short-lived records, one subject each, that age out by
    /// themselves: live leases, recent deliveries.
    async fn record_stream(
        &self,
        what: &str,
        max_age: Duration,
    ) -> Result<stream::Stream, QueueError> {
        let p = self.p();
        self.js
            .get_or_create_stream(stream::Config {
                name: format!("{p}_{}", what.to_uppercase()),
                subjects: vec![format!("{p}.{what}.>")],
                storage: stream::StorageType::Memory,
                max_age,
                max_messages_per_subject: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| backend("creating a record stream", e))
    }

    /// Starts (or, being the subject's only message, restarts) a record.
    async fn record(&self, what: &str, t: &str, id: &str) -> Result<(), QueueError> {
        self.js
            .publish(format!("{}.{what}.{t}.{id}", self.p()), Default::default())
            .await
            .map_err(|e| backend("record", e))?
            .await
            .map_err(|e| backend("record", e))?;
        Ok(())
    }

    /// Records per tenant key in a record stream.
    async fn records(
        &self,
        stream: &stream::Stream,
        what: &str,
    ) -> Result<HashMap<String, u64>, QueueError> {
        let mut out: HashMap<String, u64> = HashMap::new();
        for (subject, n) in Self::subject_counts(stream, &format!("{}.{what}.>", self.p())).await? {
            if let Some(t) = subject.rsplit('.').nth(1) {
                *out.entry(t.to_string()).or_default() += n;
            }
        }
        Ok(out)
    }

    async fn streams(&self) -> Result<Streams, QueueError> {
        let mut guard = self.streams.lock().await;
        if let Some(s) = &*guard {
            return Ok(s.clone());
        }
        let p = self.p();
        let jobs = self
            .js
            .get_or_create_stream(stream::Config {
                name: format!("{p}_JOBS"),
                subjects: vec![format!("{p}.job.>")],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: self.options.dedup_window,
                ..Default::default()
            })
            .await
            .map_err(|e| backend("creating the job stream", e))?;
        let dlq = self
            .js
            .get_or_create_stream(stream::Config {
                name: format!("{p}_DLQ"),
                subjects: vec![format!("{p}.dlq.>")],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| backend("creating the dead-letter stream", e))?;
        let control = self
            .js
            .get_or_create_stream(stream::Config {
                name: format!("{p}_CONTROL"),
                subjects: vec![format!("{p}.paused.>"), format!("{p}.limit.>")],
                storage: stream::StorageType::File,
                max_messages_per_subject: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| backend("creating the control stream", e))?;
        let (concurrency, rate) = self.options.tenant_limits.kinds();
        let leases = match concurrency {
            true => Some(self.record_stream("lease", self.options.lease).await?),
            false => None,
        };
        let recent = match rate {
            true => Some(self.record_stream("recent", Duration::from_secs(1)).await?),
            false => None,
        };
        let s = Streams {
            jobs,
            dlq,
            control,
            leases,
            recent,
        };
        *guard = Some(s.clone());
        Ok(s)
    }

    fn consumer_name(&self, t: &str, class: Priority) -> String {
        format!("{}_{t}_{class}", self.p())
    }

    async fn consumer(
        &self,
        jobs: &stream::Stream,
        t: &str,
        class: Priority,
    ) -> Result<consumer::PullConsumer, QueueError> {
        let name = self.consumer_name(t, class);
        if let Some(c) = self.consumers.lock().await.get(&name) {
            return Ok(c.clone());
        }
        let c = jobs
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("{}.job.{t}.{class}", self.p()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.options.lease,
                    max_deliver: -1,
                    max_ack_pending: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| backend("creating a consumer", e))?;
        self.consumers.lock().await.insert(name, c.clone());
        Ok(c)
    }

    /// Message counts per subject under `filter`.
    async fn subject_counts(
        stream: &stream::Stream,
        filter: &str,
    ) -> Result<BTreeMap<String, u64>, QueueError> {
        stream
            .info_with_subjects(filter)
            .await
            .map_err(|e| backend("stream info", e))?
            .map_ok(|(subject, n)| (subject, n as u64))
            .try_collect()
            .await
            .map_err(|e| backend("stream info", e))
    }

    /// Ack-type reply to the server. An ack waits for the server's answer,
    /// so that a lease right after it cannot see the job again; the others
    /// are flushed.
    async fn reply(&self, reply: &str, kind: AckKind) -> Result<(), QueueError> {
        let reply = reply.to_string();
        if matches!(kind, AckKind::Ack) {
            self.client
                .request(reply, kind.into())
                .await
                .map_err(|e| backend("ack", e))?;
        } else {
            self.client
                .publish(reply, kind.into())
                .await
                .map_err(|e| backend("ack", e))?;
            self.client.flush().await.map_err(|e| backend("flush", e))?;
        }
        Ok(())
    }

    async fn publish_job(
        &self,
        job: QueuedJob,
        msg_id: String,
    ) -> Result<jetstream::publish::PublishAck, QueueError> {
        let subject = format!(
            "{}.job.{}.{}",
            self.p(),
            tenant_key(&job.tenant),
            job.priority
        );
        let mut h = job_headers(&job);
        h.insert(MSG_ID, msg_id.as_str());
        self.js
            .publish_with_headers(subject, h, job.payload.into())
            .await
            .map_err(|e| backend("publish", e))?
            .await
            .map_err(|e| backend("publish", e))
    }

    async fn end_lease_record(&self, s: &Streams, t: &str, seq: u64) -> Result<(), QueueError> {
        if let Some(leases) = &s.leases {
            leases
                .purge()
                .filter(format!("{}.lease.{t}.{seq}", self.p()))
                .await
                .map_err(|e| backend("ending a lease record", e))?;
        }
        Ok(())
    }

    async fn bury(
        &self,
        s: &Streams,
        seq: u64,
        job: &QueuedJob,
        deliveries: u32,
        reason: &str,
    ) -> Result<(), QueueError> {
        let t = tenant_key(&job.tenant);
        let mut h = job_headers(job);
        h.insert(H_REASON, reason);
        h.insert(H_DELIVERIES, deliveries.to_string().as_str());
        h.insert(H_DEAD_AT, format_deadline(&Utc::now()).as_str());
        // The job's sequence makes the move idempotent if it is retried.
        h.insert(MSG_ID, format!("dlq:{seq}").as_str());
        self.js
            .publish_with_headers(
                format!("{}.dlq.{t}", self.p()),
                h,
                job.payload.clone().into(),
            )
            .await
            .map_err(|e| backend("dead-lettering", e))?
            .await
            .map_err(|e| backend("dead-lettering", e))?;
        self.end_lease_record(s, &t, seq).await
    }

    /// Up to `quota` deliveries of one tenant, most urgent class first.
    async fn take(
        &self,
        s: &Streams,
        t: &str,
        counts: &[u64; 3],
        mut quota: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut out = Vec::new();
        for (class, &count) in Priority::ALL.iter().zip(counts) {
            if quota == 0 {
                break;
            }
            if count == 0 {
                continue;
            }
            let consumer = self.consumer(&s.jobs, t, *class).await?;
            let mut batch = consumer
                .fetch()
                .max_messages(quota)
                .messages()
                .await
                .map_err(|e| backend("fetch", e))?;
            // A no-wait fetch ends with the server's "no messages"; should that
            // answer never come, the lease still returns (what it has), and
            // anything delivered to the dropped fetch comes back after its
            // lease.
            let until = tokio::time::Instant::now() + FETCH_WAIT;
            while let Ok(Some(msg)) = tokio::time::timeout_at(until, batch.next()).await {
                let msg = msg.map_err(|e| backend("fetch", e))?;
                let info = msg.info().map_err(|e| codec(format!("ack subject: {e}")))?;
                let (seq, delivered) = (info.stream_sequence, info.delivered);
                let reply = msg
                    .message
                    .reply
                    .as_ref()
                    .map(|r| r.to_string())
                    .ok_or_else(|| codec("message without ack subject"))?;
                let deliveries =
                    u32::try_from(delivered).map_err(|_| codec("delivery count out of range"))?;
                let job = match decode_job(msg.message.headers.as_ref(), &msg.message.payload) {
                    Ok(job) => job,
                    Err(e) => {
                        // Not one of ours (someone else published under the
                        // prefix): handing it out again and again would stall
                        // this tenant's leases, so the server drops it.
                        tracing::warn!(subject = %msg.message.subject, error = %e, "dropping a message that is not a job");
                        self.reply(&reply, AckKind::Term).await?;
                        continue;
                    }
                };
                let token = TokenParts::encode(seq, deliveries, t, &reply);
                if deliveries > self.options.max_deliver {
                    let max = self.options.max_deliver;
                    crate::metrics::get().max_deliver_dead_lettered(&job.tenant);
                    self.bury(
                        s,
                        seq,
                        &job,
                        deliveries - 1,
                        &max_deliver_reason(deliveries - 1, max),
                    )
                    .await?;
                    self.reply(&reply, AckKind::Ack).await?;
                    continue;
                }
                if s.leases.is_some() {
                    self.record("lease", t, &seq.to_string()).await?;
                }
                if s.recent.is_some() {
                    self.record("recent", t, &format!("{seq}-{deliveries}"))
                        .await?;
                }
                out.push(Delivery {
                    token,
                    job,
                    deliveries,
                });
                quota -= 1;
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Queue for NatsQueue {
    fn backend(&self) -> &'static str {
        "nats"
    }

    async fn enqueue(&self, job: QueuedJob) -> Result<Enqueued, QueueError> {
        job.validate()?;
        self.streams().await?;
        let msg_id = job.dedup_key();
        let ack = self.publish_job(job, msg_id).await?;
        Ok(if ack.duplicate {
            Enqueued::Duplicate
        } else {
            Enqueued::Accepted
        })
    }

    async fn lease(&self, _consumer: &str, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let s = self.streams().await?;
        let _turn = match s.leases.is_some() || s.recent.is_some() {
            true => Some(self.lease_turn.lock().await),
            false => None,
        };
        let p = self.p().to_string();
        // Subjects are P.job.<t>.<class>: counts per tenant and class.
        let mut work: BTreeMap<String, [u64; 3]> = BTreeMap::new();
        for (subject, n) in Self::subject_counts(&s.jobs, &format!("{p}.job.>")).await? {
            let mut parts = subject.rsplit('.');
            let (Some(class), Some(t)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(i) = Priority::ALL.iter().position(|c| c.as_str() == class) else {
                continue;
            };
            work.entry(t.to_string()).or_default()[i] += n;
        }
        for subject in Self::subject_counts(&s.control, &format!("{p}.paused.>"))
            .await?
            .into_keys()
        {
            if let Some(t) = subject.rsplit('.').next() {
                work.remove(t);
            }
        }
        let mut overrides = HashMap::new();
        for subject in Self::subject_counts(&s.control, &format!("{p}.limit.>"))
            .await?
            .into_keys()
        {
            let Some(t) = subject.rsplit('.').next().map(str::to_string) else {
                continue;
            };
            if let Ok(m) = s.control.get_last_raw_message_by_subject(&subject).await {
                overrides.insert(t, TenantLimit::decode(&String::from_utf8_lossy(&m.payload)));
            }
        }
        let mut in_flight = match &s.leases {
            Some(leases) => self.records(leases, "lease").await?,
            None => HashMap::new(),
        };
        let mut recent = match &s.recent {
            Some(stream) => self.records(stream, "recent").await?,
            None => HashMap::new(),
        };
        let tenants: Vec<&String> = work.keys().collect();
        let mut rr = RoundRobin::new(tenants.len(), self.cursor.load(Ordering::Relaxed), max);
        let mut out = Vec::new();
        while let Some((i, quota)) = rr.next() {
            let t = tenants[i];
            let running = in_flight.get(t.as_str()).copied().unwrap_or(0);
            let lately = recent.get(t.as_str()).copied().unwrap_or(0);
            let limit = overrides
                .get(t.as_str())
                .copied()
                .unwrap_or_default()
                .over(self.configured_limit(t));
            let room = |used: u64, limit: Option<u32>| {
                limit.map_or(usize::MAX, |l| {
                    usize::try_from(u64::from(l).saturating_sub(used)).unwrap_or(usize::MAX)
                })
            };
            let allowed = quota
                .min(room(running, limit.concurrency))
                .min(room(lately, limit.per_second));
            let got = self.take(&s, t, &work[t], allowed).await?;
            *in_flight.entry(t.clone()).or_default() += got.len() as u64;
            *recent.entry(t.clone()).or_default() += got.len() as u64;
            rr.took(i, got.len(), quota);
            out.extend(got);
        }
        self.cursor.store(rr.cursor(), Ordering::Relaxed);
        Ok(out)
    }

    async fn ack(&self, token: &LeaseToken) -> Result<(), QueueError> {
        let s = self.streams().await?;
        let parts = TokenParts::decode(token)?;
        self.reply(parts.reply, AckKind::Ack).await?;
        self.end_lease_record(&s, parts.tenant, parts.seq).await
    }

    async fn nak(&self, token: &LeaseToken, delay: Duration) -> Result<(), QueueError> {
        let s = self.streams().await?;
        let parts = TokenParts::decode(token)?;
        let delay = (!delay.is_zero()).then_some(delay);
        self.reply(parts.reply, AckKind::Nak(delay)).await?;
        self.end_lease_record(&s, parts.tenant, parts.seq).await
    }

    async fn extend(&self, token: &LeaseToken) -> Result<(), QueueError> {
        let s = self.streams().await?;
        let parts = TokenParts::decode(token)?;
        self.reply(parts.reply, AckKind::Progress).await?;
        if s.leases.is_some() {
            self.record("lease", parts.tenant, &parts.seq.to_string())
                .await?;
        }
        Ok(())
    }

    async fn dead_letter(&self, token: &LeaseToken, reason: &str) -> Result<(), QueueError> {
        let s = self.streams().await?;
        let parts = TokenParts::decode(token)?;
        // The job as stored: gone means someone else settled it already.
        let msg = s
            .jobs
            .get_raw_message(parts.seq)
            .await
            .map_err(|_| lost(token))?;
        let job = decode_job(Some(&msg.headers), &msg.payload)?;
        self.bury(&s, parts.seq, &job, parts.deliveries, reason)
            .await?;
        self.reply(parts.reply, AckKind::Ack).await
    }

    async fn list_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let s = self.streams().await?;
        let mut out = Vec::new();
        let mut seq = 1;
        while out.len() < limit {
            let msg = match s
                .dlq
                .raw_message_builder()
                .sequence(seq)
                .next_by_subject(format!("{}.dlq.>", self.p()))
                .send()
                .await
            {
                Ok(m) => m,
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(backend("reading dead letters", e)),
            };
            let h = &msg.headers;
            out.push(DeadLetter {
                id: msg.sequence.to_string(),
                job: decode_job(Some(h), &msg.payload)?,
                reason: header(h, H_REASON)?.to_string(),
                deliveries: number(h, H_DELIVERIES)?,
                dead_lettered_at: parse_deadline(header(h, H_DEAD_AT)?)?,
            });
            seq = msg.sequence + 1;
        }
        Ok(out)
    }

    async fn replay_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        let not_found = || QueueError::new(ErrorKind::NotFound, format!("dead letter {id}"));
        let s = self.streams().await?;
        let seq: u64 = id.parse().map_err(|_| not_found())?;
        let msg = match s.dlq.get_raw_message(seq).await {
            Ok(m) => m,
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {
                return Err(not_found())
            }
            Err(e) => return Err(backend("reading a dead letter", e)),
        };
        let job = decode_job(Some(&msg.headers), &msg.payload)?;
        // Not the job's de-dup key: that one was used when it was enqueued.
        let msg_id = format!("{}:replay:{seq}", job.dedup_key());
        self.publish_job(job, msg_id).await?;
        s.dlq
            .delete_message(seq)
            .await
            .map_err(|e| backend("removing a replayed dead letter", e))?;
        Ok(())
    }

    async fn depth(&self, tenant: &str) -> Result<Depth, QueueError> {
        let s = self.streams().await?;
        let (p, t) = (self.p(), tenant_key(tenant));
        let total: u64 = Self::subject_counts(&s.jobs, &format!("{p}.job.{t}.*"))
            .await?
            .values()
            .sum();
        let mut leased = 0;
        for class in Priority::ALL {
            if let Ok(info) = s.jobs.consumer_info(self.consumer_name(&t, class)).await {
                leased += info.num_ack_pending as u64;
            }
        }
        let dead_lettered = Self::subject_counts(&s.dlq, &format!("{p}.dlq.{t}"))
            .await?
            .values()
            .sum();
        Ok(Depth {
            pending: total.saturating_sub(leased),
            leased,
            dead_lettered,
        })
    }

    async fn set_paused(&self, tenant: &str, paused: bool) -> Result<(), QueueError> {
        let s = self.streams().await?;
        let subject = format!("{}.paused.{}", self.p(), tenant_key(tenant));
        if paused {
            self.js
                .publish(subject, tenant.to_string().into())
                .await
                .map_err(|e| backend("publish", e))?
                .await
                .map_err(|e| backend("publish", e))?;
        } else {
            s.control
                .purge()
                .filter(subject)
                .await
                .map_err(|e| backend("resuming a tenant", e))?;
        }
        Ok(())
    }

    async fn paused(&self, tenant: &str) -> Result<bool, QueueError> {
        let s = self.streams().await?;
        let subject = format!("{}.paused.{}", self.p(), tenant_key(tenant));
        Ok(Self::subject_counts(&s.control, &subject)
            .await?
            .values()
            .any(|n| *n > 0))
    }

    async fn set_limit(&self, tenant: &str, limit: TenantLimit) -> Result<(), QueueError> {
        let s = self.streams().await?;
        if (limit.concurrency.is_some() && s.leases.is_none())
            || (limit.per_second.is_some() && s.recent.is_none())
        {
            return Err(QueueError::new(
                ErrorKind::Config,
                "nats: this queue was opened without that kind of tenant limit, so it keeps \
                 no records to enforce it; give the workers a default limit of that kind",
            ));
        }
        let subject = format!("{}.limit.{}", self.p(), tenant_key(tenant));
        self.js
            .publish(subject, limit.encode().into())
            .await
            .map_err(|e| backend("publish", e))?
            .await
            .map_err(|e| backend("publish", e))?;
        Ok(())
    }

    async fn limit(&self, tenant: &str) -> Result<TenantLimit, QueueError> {
        let s = self.streams().await?;
        let t = tenant_key(tenant);
        let subject = format!("{}.limit.{t}", self.p());
        let own = match s.control.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => TenantLimit::decode(&String::from_utf8_lossy(&m.payload)),
            Err(_) => TenantLimit::default(),
        };
        Ok(own.over(self.configured_limit(&t)))
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, QueueError> {
        let s = self.streams().await?;
        let p = self.p().to_string();
        // Subjects name tenants by key only: the tenant's name comes from
        // the headers of its oldest message, which also dates it.
        let mut by_key: BTreeMap<String, Backlog> = BTreeMap::new();
        for (subject, n) in Self::subject_counts(&s.jobs, &format!("{p}.job.>")).await? {
            let mut parts = subject.rsplit('.');
            let (Some(class), Some(t)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(i) = Priority::ALL.iter().position(|c| c.as_str() == class) else {
                continue;
            };
            let in_flight = match s
                .jobs
                .consumer_info(self.consumer_name(t, Priority::ALL[i]))
                .await
            {
                Ok(info) => info.num_ack_pending as u64,
                Err(_) => 0,
            };
            let first = match s.jobs.get_first_raw_message_by_subject(&subject, 1).await {
                Ok(m) => m,
                // Acked between the count and the read.
                Err(_) => continue,
            };
            let Ok(tenant) = header(&first.headers, H_TENANT) else {
                continue;
            };
            let at = chrono::DateTime::from_timestamp(
                first.time.unix_timestamp(),
                first.time.nanosecond(),
            );
            let b = by_key.entry(t.to_string()).or_insert_with(|| Backlog {
                tenant: tenant.to_string(),
                ready: [0; 3],
                oldest: None,
            });
            b.ready[i] += n.saturating_sub(in_flight);
            b.oldest = match (b.oldest, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let mut out: Vec<Backlog> = by_key.into_values().collect();
        out.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(out)
    }

    async fn purge(&self) -> Result<(), QueueError> {
        let mut guard = self.streams.lock().await;
        for suffix in ["JOBS", "DLQ", "LEASE", "RECENT", "CONTROL"] {
            let name = format!("{}_{suffix}", self.p());
            match self.js.delete_stream(&name).await {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        jetstream::context::DeleteStreamErrorKind::JetStream(ref j)
                            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                    ) => {}
                Err(e) => return Err(backend("deleting a stream", e)),
            }
        }
        *guard = None;
        self.consumers.lock().await.clear();
        self.cursor.store(0, Ordering::Relaxed);
        Ok(())
    }
}
