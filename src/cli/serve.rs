//! `recheck serve`: the HTTP control plane on one store. The store is opened
//! on the server's runtime (its connection tasks live there), the pipeline
//! runs on the log-writer thread, and the HTTP handlers share both. Also the
//! engine of `recheck demo --serve`, which loads the samples first.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use recheck::api::auth::Authenticator;
use recheck::api::config::{ApiKeyConfig, Scope, ServeConfig};
use recheck::api::writer::LogWriter;
use recheck::api::{router, AppState};
use recheck::core::pipeline::Pipeline;
use recheck::core::planner::Planner;
use recheck::engine::record::InputRecord;
use recheck::model::DEFAULT_TENANT;

use super::engine_args::EngineArgs;

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
    #[command(flatten)]
    pub engine: EngineArgs,
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

/// Serve until Ctrl-C / SIGTERM. `preload` records are pushed (and their
/// window closed) before the listener opens; `announce` runs once the
/// address is bound.
pub fn serve(
    args: &ServeArgs,
    config: ServeConfig,
    preload: Vec<InputRecord>,
    announce: impl FnOnce(SocketAddr),
) -> anyhow::Result<ExitCode> {
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
    let mut pipeline = Pipeline::with_store(
        store.clone(),
        &args.engine.config(),
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
    let state = AppState::new(auth, store, writer, config.limits.clone());
    let app = router(state);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let local = listener.local_addr().context("reading the bound address")?;
        announce(local);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving HTTP")
    })?;
    // The router (and with it every writer handle) is gone: the writer
    // drains, closes its last window and stops the engine.
    writer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the log writer panicked"))?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
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

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.print_openapi {
        println!("{}", recheck::api::openapi().to_pretty_json()?);
        return Ok(ExitCode::SUCCESS);
    }
    let (config, generated) = load_config(args.config.as_ref())?;
    serve(&args, config, Vec::new(), |addr| {
        println!("listening on http://{addr}");
        if let Some(key) = &generated {
            println!(
                "no --config: generated API key for tenant {DEFAULT_TENANT} (all scopes): {key}"
            );
        }
        println!("OpenAPI document: http://{addr}/api/v1/openapi.json");
    })
}
