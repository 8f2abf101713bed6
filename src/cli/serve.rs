//! `recheck serve`: the HTTP control plane on one store, with the jobs it
//! plans run in the same process. The store is opened on the server's
//! runtime (its connection tasks live there), the pipeline runs on the
//! log-writer thread, and the HTTP handlers share both. After each committed
//! window a dispatcher task moves the window's jobs from the store's outbox
//! to the queue (in-process `memory://` unless `--queue` names a shared one),
//! and an in-process worker pool (`--workers N`, built as `recheck worker`
//! builds its own) runs them and feeds the live event stream. Also the
//! engine of `recheck demo --serve`, which loads the samples first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;

use recheck::api::auth::Authenticator;
use recheck::api::config::{ApiKeyConfig, Scope, ServeConfig};
use recheck::api::events::EventHub;
use recheck::api::writer::{LogWriter, WriterStatus};
use recheck::api::{router, AppState};
use recheck::attest::keys::SigningKey;
use recheck::core::dispatcher;
use recheck::core::pipeline::Pipeline;
use recheck::core::planner::Planner;
use recheck::engine::record::InputRecord;
use recheck::engine::EngineConfig;
use recheck::model::{JobState, DEFAULT_TENANT};
use recheck::queue::{self, Queue};
use recheck::store::{self, JobFilter, Store};
use recheck::worker::policy::{LoadedPolicy, DEFAULT_POLICY};
use recheck::worker::{Worker, WorkerPool};

use super::worker::{self as worker_cli, WorkerOptions};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the chosen address is
    /// printed on stdout as `listening on http://ADDR`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8440")]
    pub listen: SocketAddr,
    /// The store: a file path or `redb:///path` (embedded, the default),
    /// `postgres://…[?schema=NAME]`, or `mongodb://…/DB`.
    #[arg(long, value_name = "URL", default_value = "recheck.redb")]
    pub store: String,
    /// TOML file with tenants, API keys (sha256), JWT keys, limits and the
    /// window policy (see the `recheck::api::config` docs). Without it, one
    /// admin key for tenant `default` is generated and printed.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    pub print_openapi: bool,
    /// Timely worker threads of the engine.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub engine_workers: usize,
    /// The job queue: `memory://` (in-process, the default), or a shared
    /// `nats://host:port` / `redis://host:port[/db]` that `recheck worker`
    /// processes also take jobs from.
    #[arg(long, value_name = "URL", default_value = "memory://")]
    pub queue: String,
    /// Jobs run at once by the in-process worker pool; 0 runs none (jobs are
    /// left to `recheck worker` processes on a shared store and queue).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub workers: usize,
    /// The policy file (TOML; see the README's "Policy files"). Default: the
    /// built-in policy (fail on a high or critical finding with a fix, warn
    /// on any other affected finding).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The ed25519 private key (PKCS#8 PEM) that signs completion events.
    /// Default: `recheck-serve.key.pem` beside an embedded store (else in a
    /// temporary directory), generated on first start; its key id and public
    /// key file are printed.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    #[command(flatten)]
    pub worker: WorkerOptions,
}

impl ServeArgs {
    /// Serve `store` with the defaults of every other flag.
    pub fn defaults(listen: SocketAddr, store: String) -> ServeArgs {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let mut args = <Defaults as clap::Parser>::parse_from(["recheck-serve"]).serve;
        args.listen = listen;
        args.store = store;
        args
    }
}

/// A random API key (hex of 32 random bytes).
fn new_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!("rk_{}", hex::encode(bytes)))
}

/// The configuration to serve with, and a generated admin key when there was
/// no file.
pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<(ServeConfig, Option<String>)> {
    if let Some(path) = path {
        return Ok((ServeConfig::load(path)?, None));
    }
    let key = new_key()?;
    let config = ServeConfig {
        tenants: vec![DEFAULT_TENANT.to_string()],
        api_keys: vec![ApiKeyConfig {
            name: "generated-admin".into(),
            tenant: DEFAULT_TENANT.into(),
            sha256: ServeConfig::hash_key(&key),
            scopes: Scope::ALL.to_vec(),
        }],
        ..ServeConfig::default()
    };
    Ok((config, Some(key)))
}

/// The key that signs completion events, and the public key file to verify
/// them with when this server made the key.
pub struct EventKey {
    pub key: Arc<SigningKey>,
    pub public_key_file: Option<PathBuf>,
}

/// `--signing-key`, or the server's own key beside the embedded store (kept
/// across restarts, so earlier events stay verifiable with the same key).
fn event_key(args: &ServeArgs) -> anyhow::Result<EventKey> {
    if let Some(path) = &args.signing_key {
        return Ok(EventKey {
            key: Arc::new(worker_cli::load_key(path)?),
            public_key_file: None,
        });
    }
    let dir = match store::embedded_path(&args.store) {
        Some(path) => match Path::new(path).parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => std::env::temp_dir().join(format!("recheck-serve-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let private = dir.join("recheck-serve.key.pem");
    let public = dir.join("recheck-serve.pub.pem");
    let key = if private.exists() {
        worker_cli::load_key(&private)?
    } else {
        let key = SigningKey::generate()?;
        super::keygen::write_new(&private, key.to_pkcs8_pem()?.as_bytes(), 0o600)?;
        key
    };
    if !public.exists() {
        super::keygen::write_new(&public, key.public_key().to_pem().as_bytes(), 0o644)?;
    }
    Ok(EventKey {
        key: Arc::new(key),
        public_key_file: Some(public),
    })
}

/// Before serving: a queue that lost jobs the store holds as queued is
/// refilled; with the in-process queue, jobs a previous process held
/// (running, failed, retrying when it stopped) are queued again too, since
/// no other process can hold them. Workers take those over as lost leases.
async fn recover(store: &dyn Store, queue: &dyn Queue) -> anyhow::Result<()> {
    if dispatcher::queue_lost_jobs(store, queue).await? {
        let done = dispatcher::refill(store, queue).await?;
        eprintln!(
            "queue refilled from the store: {} queued jobs",
            done.enqueued
        );
    }
    if queue.backend() != "memory" {
        return Ok(());
    }
    let mut orphans = 0;
    for state in [JobState::Running, JobState::Failed, JobState::Retrying] {
        let jobs = store
            .jobs(&JobFilter {
                state: Some(state),
                ..JobFilter::default()
            })
            .await?;
        for job in &jobs {
            queue.enqueue(dispatcher::queued_job(job)?).await?;
            orphans += 1;
        }
    }
    if orphans > 0 {
        eprintln!("{orphans} jobs left unfinished by the previous process queued again");
    }
    Ok(())
}

/// Move the outbox to the queue after each committed window (and once a
/// second, for jobs committed by other writers such as runs), until `stop`.
async fn dispatch_loop(
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    status: Arc<WriterStatus>,
    worker: Option<Arc<Worker>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        match dispatcher::dispatch(store.as_ref(), queue.as_ref()).await {
            Ok(done) if done.enqueued > 0 => {
                tracing::debug!(
                    enqueued = done.enqueued,
                    duplicates = done.duplicates,
                    "dispatched"
                );
                if let Some(w) = &worker {
                    w.wake();
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "dispatch failed; trying again"),
        }
        tokio::select! {
            _ = status.committed.notified() => {}
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Serve until Ctrl-C / SIGTERM. `preload` records are pushed (and their
/// window closed) before the listener opens; `announce` runs once the
/// address is bound, with the key that signs events.
pub fn serve(
    args: &ServeArgs,
    config: ServeConfig,
    preload: Vec<InputRecord>,
    announce: impl FnOnce(SocketAddr, &EventKey),
) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => worker_cli::load_policy(path)?,
        None => LoadedPolicy::parse(DEFAULT_POLICY).context("the built-in policy")?,
    };
    let key = event_key(args)?;
    // Refuse bad worker flags before anything starts.
    args.worker.config(args.workers)?;
    if args.workers == 0 && args.queue.starts_with("memory://") {
        eprintln!("warning: --workers 0 with the in-process queue: no process will run the jobs");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let auth = Authenticator::new(&config)?;
    recheck::metrics::get().preregister("serve", config.tenants.iter().map(String::as_str));
    let store = runtime
        .block_on(recheck::store::open(&args.store))
        .with_context(|| format!("opening store {}", args.store))?;
    let queue = runtime
        .block_on(queue::open(&args.queue, args.worker.queue_options()))
        .with_context(|| format!("opening the queue {}", args.queue))?;
    // The control plane owns the queue gauges: workers sharing the queue
    // would report the same backlog once each.
    runtime.spawn(recheck::metrics::sample_queue(
        queue.clone(),
        std::time::Duration::from_secs(5),
    ));
    let engine = EngineConfig {
        workers: args.engine_workers.max(1),
        processes: 1,
        process_index: 0,
        hostfile: None,
    };
    let mut pipeline = Pipeline::with_store(
        store.clone(),
        &engine,
        Planner::default(),
        Box::new(chrono::Utc::now),
    )
    .context("starting the pipeline")?;
    let recovered = pipeline.recovered();
    if recovered.records > 0 {
        eprintln!(
            "recovered {} input records from the store ({} windows already committed, {} committed now)",
            recovered.records, recovered.windows_skipped, recovered.windows_committed
        );
    }
    if !preload.is_empty() {
        let mut records = preload;
        records.push(InputRecord::WindowClosed {
            window: pipeline.next_window(),
            closed_at: None,
        });
        pipeline.push(&records).context("loading the samples")?;
    }
    let (writer, writer_thread) =
        LogWriter::spawn(pipeline, config.windows.clone()).context("starting the log writer")?;
    let status = writer.status.clone();
    // Without in-process workers nothing feeds the hub: streams poll the store.
    let hub = Arc::new(EventHub::new(
        (args.workers == 0).then_some(Duration::from_secs(2)),
    ));
    let state = AppState::new(auth, store.clone(), writer, config.limits.clone())
        .with_queue(queue.clone())
        .with_events(hub.clone())
        .with_webhooks(config.webhooks.clone());
    let app = router(state);
    runtime.block_on(async {
        recover(store.as_ref(), queue.as_ref())
            .await
            .context("refilling the queue")?;
        let pool = if args.workers > 0 {
            let worker = worker_cli::build(
                store.clone(),
                queue.clone(),
                policy,
                key.key.clone(),
                &args.worker,
                args.workers,
            )
            .await?
            .with_event_feed(hub.sender());
            eprintln!(
                "worker pool {}: {} slots, policy {}",
                worker.config.name, worker.config.concurrency, worker.policy.version
            );
            Some(WorkerPool::start(Arc::new(worker)))
        } else {
            None
        };
        let (stop, stopped) = watch::channel(false);
        let dispatcher = tokio::spawn(dispatch_loop(
            store.clone(),
            queue.clone(),
            status,
            pool.as_ref().map(|p| p.worker().clone()),
            stopped,
        ));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let local = listener.local_addr().context("reading the bound address")?;
        announce(local, &key);
        let streams = hub.clone();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                // Open event streams end, or the shutdown would wait on them.
                streams.close();
            })
            .await
            .context("serving HTTP");
        // No request runs any more: finish the jobs in hand (their results
        // are stored; what is left queued is in the store and is queued
        // again on the next start), then stop dispatching.
        if let Some(pool) = pool {
            eprintln!("stopping: finishing the jobs in hand");
            pool.shutdown().await;
        }
        stop.send_replace(true);
        if dispatcher.await.is_err() {
            tracing::warn!("the dispatcher task ended abnormally");
        }
        served
    })?;
    // The router (and with it every writer handle) is gone: the writer
    // drains, closes its last window and stops the engine.
    writer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the log writer panicked"))?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// What the server prints about its signing key, each line after `indent`:
/// the key id every envelope names, and the file `recheck verify` checks
/// them with.
pub fn print_key(key: &EventKey, indent: &str) {
    println!("{indent}signing key id: {}", key.key.keyid());
    if let Some(public) = &key.public_key_file {
        println!("{indent}public key: {}", public.display());
        println!(
            "{indent}  verify an event: recheck verify EVENT.json --key {}",
            public.display()
        );
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.print_openapi {
        println!("{}", recheck::api::openapi().to_pretty_json()?);
        return Ok(ExitCode::SUCCESS);
    }
    let (config, generated) = load_config(args.config.as_ref())?;
    serve(&args, config, Vec::new(), |addr, key| {
        print_key(key, "");
        if let Some(key) = &generated {
            println!(
                "no --config: generated API key for tenant {DEFAULT_TENANT} (all scopes): {key}"
            );
        }
        println!("OpenAPI document: http://{addr}/api/v1/openapi.json");
        println!("listening on http://{addr}");
    })
}
