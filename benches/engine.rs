//! `cargo bench --bench engine`: the engine suite of `recheck bench` at a
//! size set by `RECHECK_BENCH_INSTANCES` (default 200k), printed as JSON.

use recheck::bench::{run_engine_suite, BenchConfig};
use recheck::engine::EngineConfig;

fn main() {
    let instances = std::env::var("RECHECK_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let config = BenchConfig {
        instances,
        components_per_artifact: 100,
        seed: 42,
        changes: 200,
        engine: EngineConfig::default(),
        sql: std::env::var_os("RECHECK_BENCH_SQL").is_some(),
        scratch: std::env::temp_dir().join("recheck-cargo-bench"),
    };
    match run_engine_suite(&config, &mut |step| eprintln!("bench: {step}")) {
        Ok(report) => println!("{report:#}"),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}
