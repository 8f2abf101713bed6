//! `recheck worker`: run recheck jobs from a shared queue against a shared
//! store, as one of many worker processes, until SIGTERM or ctrl-c.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use recheck::attest::keys::SigningKey;
use recheck::queue::{self, QueueOptions, TenantLimit, TenantLimits};
use recheck::store;
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
    /// Namespace of the queue's server-side names (as the dispatcher's).
    #[arg(long, default_value = "recheck")]
    pub queue_prefix: String,
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
    /// Serve Prometheus metrics on this address (`GET /metrics`, no
    /// credential; e.g. 127.0.0.1:9464). Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// How often the queue gauges are sampled.
const QUEUE_SAMPLE: Duration = Duration::from_secs(5);

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
    let policy_text = std::fs::read_to_string(&args.policy)
        .with_context(|| format!("reading the policy {}", args.policy.display()))?;
    let policy = LoadedPolicy::parse(&policy_text)
        .with_context(|| format!("policy {}", args.policy.display()))?;
    let key_text = std::fs::read_to_string(&args.signing_key)
        .with_context(|| format!("reading the signing key {}", args.signing_key.display()))?;
    let key = SigningKey::from_pkcs8_pem(&key_text)
        .with_context(|| format!("signing key {}", args.signing_key.display()))?;
    let sla = SlaTable::parse(&args.sla).map_err(|e| anyhow::anyhow!("--sla: {e}"))?;
    let executor: Arc<dyn Executor> = match &args.executor_url {
        Some(url) => Arc::new(
            HttpExecutor::new(url, Duration::from_secs(args.executor_timeout))
                .context("--executor-url")?,
        ),
        None => Arc::new(PolicyExecutor),
    };
    let lease = Duration::from_secs(args.lease.max(1));
    let config = WorkerConfig {
        name: args
            .name
            .clone()
            .unwrap_or_else(|| format!("worker-{}", std::process::id())),
        concurrency: args.concurrency.max(1),
        retry: RetryPolicy {
            max_attempts: args.max_attempts.max(1),
            base: Duration::from_millis(args.backoff_ms),
            max_delay: Duration::from_millis(args.max_backoff_ms),
            attempt_budget: Duration::from_secs(args.attempt_budget),
        },
        sla,
        lease,
        ..WorkerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let store = store::open(&args.store)
            .await
            .with_context(|| format!("opening the store {}", args.store))?;
        let options = QueueOptions {
            prefix: args.queue_prefix.clone(),
            lease,
            // The worker gives up by itself (attempts, deadline); the queue's
            // own limit only catches jobs that keep killing their workers.
            max_deliver: args.max_attempts.saturating_mul(2).max(2),
            tenant_limits: TenantLimits {
                default: TenantLimit {
                    concurrency: args.tenant_concurrency,
                    per_second: args.tenant_rate,
                },
                ..TenantLimits::default()
            },
            ..QueueOptions::default()
        };
        let queue = queue::open(&args.queue, options)
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
            tokio::spawn(recheck::metrics::sample_queue(queue.clone(), QUEUE_SAMPLE));
        }
        let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
        for url in &args.events {
            sinks.push(Arc::from(sink::open(url).await.context("--events")?));
        }
        let worker = Arc::new(Worker::new(
            store,
            queue,
            Arc::new(policy),
            Arc::new(key),
            executor,
            sinks,
            config,
        ));
        eprintln!(
            "worker {}: {} slots, policy {}",
            worker.config.name, worker.config.concurrency, worker.policy.version
        );
        let pool = WorkerPool::start(worker.clone());
        shutdown_signal().await;
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok();
    }
}
