//! Flags that place the timely engine: worker threads and cluster processes.

use std::path::PathBuf;

use clap::Args;

use recheck::engine::EngineConfig;

#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Timely worker threads in this process.
    #[arg(long, short = 'w', default_value_t = 1, value_name = "N")]
    pub workers: usize,
    /// Processes in the timely cluster (timely's own cluster mode).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub processes: usize,
    /// This process's index in the cluster; process 0 reads the input and
    /// prints the output, the others only join the exchange.
    #[arg(long, default_value_t = 0, value_name = "I")]
    pub process_index: usize,
    /// File with one `host:port` per process (default: 127.0.0.1 from port 2101).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
}

impl EngineArgs {
    pub fn config(&self) -> EngineConfig {
        EngineConfig {
            workers: self.workers,
            processes: self.processes,
            process_index: self.process_index,
            hostfile: self.hostfile.clone(),
        }
    }
}
