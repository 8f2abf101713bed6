//! An idle engine parks its timely workers instead of spinning a core.

use std::time::Duration;

use recheck::engine::{Engine, EngineConfig};

/// CPU time (user + system) this process has used, from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    // Fields after the command name (which may contain spaces) start at ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

#[test]
fn idle_workers_do_not_spin() {
    let engine = Engine::start(&EngineConfig {
        workers: 2,
        ..EngineConfig::default()
    })
    .expect("engine starts");
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_time() - before;
    engine.shutdown();
    println!("CPU used by an idle 2-worker engine over 2 s: {used:?}");
    assert!(
        used < Duration::from_millis(300),
        "idle engine used {used:?} of CPU in 2 s"
    );
}
