//! `recheck worker`: run recheck jobs from a shared queue against a shared
//! store, as one of many worker processes, until SIGTERM or ctrl-c.
//!
//! The flags that shape a worker (executor, event sinks, lease, retries,
//! SLA, tenant limits) are [`WorkerOptions`], shared with `recheck serve`,
//! which runs the same [`Worker`] in-process; [`build`] turns them into one,
//! so both commands wire a worker the same way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use recheck::attest::keys::SigningKey;
use recheck::queue::{self, Queue, QueueOptions, TenantLimit, TenantLimits};
use recheck::store::{self, Store};
use recheck::worker::executor::{Executor, HttpExecutor, PolicyExecutor};
use recheck::worker::policy::LoadedPolicy;
use recheck::worker::retry::{RetryPolicy, SlaTable};
use recheck::worker::sink::{self, EventSink};
use recheck::worker::{Worker, WorkerConfig, WorkerPool};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The shared store: postgres://…?schema=S or mongodb://…/db. The
    /// embedded store is one process's file and is refused (`recheck serve`
    /// runs its workers in-process instead).
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The shared queue: nats://host:port or redis://host:port[/db].
    #[arg(long, value_name = "URL")]
    pub queue: String,
    /// Jobs run at once by this process.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The policy file (TOML; see the README's "Policy" section).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The ed25519 private key (PKCS#8 PEM, from `recheck keygen`) that signs
    /// completion events.
    #[arg(long, value_name = "FILE")]
    pub signing_key: PathBuf,
    /// Serve Prometheus metrics on this address (`GET /metrics`, no
    /// credential; e.g. 127.0.0.1:9464). Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub options: WorkerOptions,
}

/// How a worker runs, as `recheck worker` and `recheck serve` take it.
#[derive(Debug, Clone, Args)]
pub struct WorkerOptions {
    /// Namespace of the queue's server-side names (as the dispatcher's).
    #[arg(long, default_value = "recheck")]
    pub queue_prefix: String,
    /// Also POST each job to this Scanner / Policy Engine endpoint
    /// (http://…); its answer is recorded, 5xx and timeouts are retried.
    #[arg(long, value_name = "URL")]
    pub executor_url: Option<String>,
    /// Timeout of one executor call, in seconds.
    #[arg(long, default_value_t = 30)]
    pub executor_timeout: u64,
    /// Publish completion events here (repeatable): nats://…?subject=S,
    /// redis://…?stream=KEY or an http:// webhook.
    #[arg(long = "events", value_name = "URL")]
    pub events: Vec<String>,
    /// Queue lease in seconds (held jobs are extended at a third of it).
    #[arg(long, default_value_t = 30)]
    pub lease: u64,
    /// Attempts per job, the first included.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// First retry delay in milliseconds (doubling, with jitter).
    #[arg(long, default_value_t = 2000)]
    pub backoff_ms: u64,
    /// Longest retry delay in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    pub max_backoff_ms: u64,
    /// Time one attempt is expected to take, in seconds: a retry that could
    /// not finish before the SLA deadline dead-letters the job instead.
    #[arg(long, default_value_t = 30)]
    pub attempt_budget: u64,
    /// SLA overrides, e.g. `critical:running=1h,high:*=4h,*=7d` (severity
    /// none|low|medium|high|critical, runtime unknown|deployed|running|stopped).
    #[arg(long, default_value = "")]
    pub sla: String,
    /// At most this many jobs of one tenant leased at once.
    #[arg(long)]
    pub tenant_concurrency: Option<u32>,
    /// At most this many deliveries per second for one tenant.
    #[arg(long)]
    pub tenant_rate: Option<u32>,
    /// Consumer name on the queue (default: worker-<pid>).
    #[arg(long)]
    pub name: Option<String>,
}

impl WorkerOptions {
    fn lease(&self) -> Duration {
        Duration::from_secs(self.lease.max(1))
    }

    /// The queue settings a worker and its dispatcher share.
    pub fn queue_options(&self) -> QueueOptions {
        QueueOptions {
            prefix: self.queue_prefix.clone(),
            lease: self.lease(),
            // The worker gives up by itself (attempts, deadline); the queue's
            // own limit only catches jobs that keep killing their workers.
            max_deliver: self.max_attempts.saturating_mul(2).max(2),
            tenant_limits: TenantLimits {
                default: TenantLimit {
                    concurrency: self.tenant_concurrency,
                    per_second: self.tenant_rate,
                },
                ..TenantLimits::default()
            },
            ..QueueOptions::default()
        }
    }

    /// The worker's configuration with `concurrency` slots.
    pub fn config(&self, concurrency: usize) -> anyhow::Result<WorkerConfig> {
        let sla = SlaTable::parse(&self.sla).map_err(|e| anyhow::anyhow!("--sla: {e}"))?;
        Ok(WorkerConfig {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| format!("worker-{}", std::process::id())),
            concurrency: concurrency.max(1),
            retry: RetryPolicy {
                max_attempts: self.max_attempts.max(1),
                base: Duration::from_millis(self.backoff_ms),
                max_delay: Duration::from_millis(self.max_backoff_ms),
                attempt_budget: Duration::from_secs(self.attempt_budget),
            },
            sla,
            lease: self.lease(),
            ..WorkerConfig::default()
        })
    }

    fn executor(&self) -> anyhow::Result<Arc<dyn Executor>> {
        Ok(match &self.executor_url {
            Some(url) => Arc::new(
                HttpExecutor::new(url, Duration::from_secs(self.executor_timeout))
                    .context("--executor-url")?,
            ),
            None => Arc::new(PolicyExecutor),
        })
    }

    async fn sinks(&self) -> anyhow::Result<Vec<Arc<dyn EventSink>>> {
        let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
        for url in &self.events {
            sinks.push(Arc::from(sink::open(url).await.context("--events")?));
        }
        Ok(sinks)
    }
}

/// A policy file, parsed.
pub fn load_policy(path: &Path) -> anyhow::Result<LoadedPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the policy {}", path.display()))?;
    LoadedPolicy::parse(&text).with_context(|| format!("policy {}", path.display()))
}

/// A signing key file (PKCS#8 PEM).
pub fn load_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&text).with_context(|| format!("signing key {}", path.display()))
}

/// A worker on `store` and `queue` with `concurrency` slots, as `options`
/// say. Opens the event sinks, so it runs on the caller's runtime.
pub async fn build(
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    policy: LoadedPolicy,
    key: Arc<SigningKey>,
    options: &WorkerOptions,
    concurrency: usize,
) -> anyhow::Result<Worker> {
    let config = options.config(concurrency)?;
    let executor = options.executor()?;
    let sinks = options.sinks().await?;
    Ok(Worker::new(
        store,
        queue,
        Arc::new(policy),
        key,
        executor,
        sinks,
        config,
    ))
}

pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    if store::embedded_path(&args.store).is_some() {
        bail!(
            "--store {}: `recheck worker` needs a store shared between processes \
             (postgres://… or mongodb://…); the embedded store belongs to one process — \
             use `recheck serve`, which runs its workers in-process",
            args.store
        );
    }
    if args.queue.starts_with("memory://") {
        bail!("--queue memory:// lives inside one process; use nats:// or redis://");
    }
    let policy = load_policy(&args.policy)?;
    let key = Arc::new(load_key(&args.signing_key)?);
    // Refuse bad flags before connecting anywhere.
    args.options.config(args.concurrency)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let store = store::open(&args.store)
            .await
            .with_context(|| format!("opening the store {}", args.store))?;
        let queue = queue::open(&args.queue, args.options.queue_options())
            .await
            .with_context(|| format!("opening the queue {}", args.queue))?;
        recheck::metrics::get().preregister("worker", []);
        if let Some(addr) = args.metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics-listen {addr}"))?;
            let local = listener.local_addr().context("reading the bound address")?;
            eprintln!("metrics on http://{local}/metrics");
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, recheck::api::metrics_router()).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            });
        }
        let worker =
            Arc::new(build(store, queue, policy, key, &args.options, args.concurrency).await?);
        eprintln!(
            "worker {}: {} slots, policy {}",
            worker.config.name, worker.config.concurrency, worker.policy.version
        );
        let pool = WorkerPool::start(worker.clone());
        super::serve::shutdown_signal().await;
        eprintln!(
            "worker {}: stopping, finishing the jobs in hand",
            worker.config.name
        );
        pool.shutdown().await;
        eprintln!(
            "worker {}: stopped after {} deliveries",
            worker.config.name,
            worker.handled()
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
