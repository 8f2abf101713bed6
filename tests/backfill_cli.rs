//! `recheck backfill` (the incremental engine, one window) prints exactly what
//! `recheck scan` (the reference matcher) prints, byte for byte, on the
//! bundled samples and on the whole shared corpus; with 1 worker, 2 workers
//! and 2 timely processes on loopback.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn recheck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recheck"))
}

struct Inputs {
    advisories: Vec<PathBuf>,
    sboms: Vec<PathBuf>,
    vex: Vec<PathBuf>,
}

fn samples() -> Inputs {
    let s = recheck::samples::bundled_dir();
    Inputs {
        advisories: vec![s.join("advisories")],
        sboms: vec![s.join("sboms")],
        vex: vec![s.join("vex")],
    }
}

fn corpus() -> Option<Inputs> {
    let d = common::shared_data()?;
    let s = recheck::samples::bundled_dir();
    Some(Inputs {
        advisories: vec![d.join("osv"), s.join("advisories")],
        sboms: vec![
            d.join("sbom/cyclonedx/bom-examples"),
            d.join("sbom/cyclonedx/in-the-wild"),
            d.join("sbom/spdx"),
            s.join("sboms"),
        ],
        vex: vec![
            d.join("vex/openvex"),
            d.join("vex/csaf/csaf_vex"),
            s.join("vex"),
        ],
    })
}

fn args(cmd: &mut Command, inputs: &Inputs) {
    cmd.arg("--advisories").args(&inputs.advisories);
    cmd.arg("--sbom").args(&inputs.sboms);
    cmd.arg("--vex").args(&inputs.vex);
}

fn run(sub: &str, inputs: &Inputs, extra: &[&str]) -> Output {
    let mut cmd = recheck();
    cmd.arg(sub);
    args(&mut cmd, inputs);
    cmd.args(extra);
    let out = cmd.output().expect("run recheck");
    assert!(
        out.status.success(),
        "recheck {sub} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Process 0 and process 1 of a 2-process timely cluster on loopback.
fn run_cluster(inputs: &Inputs) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("recheck-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let hostfile = dir.join("hosts");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("write hostfile");
    let spawn = |index: &str| {
        let mut cmd = recheck();
        cmd.arg("backfill");
        args(&mut cmd, inputs);
        cmd.args(["--processes", "2", "--process-index", index, "--hostfile"])
            .arg(&hostfile)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("spawn backfill process")
    };
    let follower = spawn("1");
    let leader = spawn("0");
    let out = leader.wait_with_output().expect("leader");
    let follower_out = follower.wait_with_output().expect("follower");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        follower_out.status.success(),
        "{}",
        String::from_utf8_lossy(&follower_out.stderr)
    );
    // Timely itself may log connection retries on stdout; findings come only from process 0.
    assert!(
        !String::from_utf8_lossy(&follower_out.stdout)
            .lines()
            .any(|l| l.starts_with('{')),
        "only process 0 prints findings"
    );
    std::fs::remove_dir_all(&dir).ok();
    out.stdout
}

#[test]
fn backfill_equals_scan_on_samples() {
    let inputs = samples();
    let scan = run("scan", &inputs, &[]).stdout;
    assert!(!scan.is_empty());
    assert_eq!(run("backfill", &inputs, &[]).stdout, scan);
    assert_eq!(
        run("backfill", &inputs, &["--format", "table"]).stdout,
        run("scan", &inputs, &["--format", "table"]).stdout
    );
}

#[test]
fn backfill_equals_scan_on_the_corpus_with_1_and_2_workers_and_2_processes() {
    let Some(inputs) = corpus() else { return };
    let scan = run("scan", &inputs, &[]).stdout;
    let lines = scan.iter().filter(|b| **b == b'\n').count();
    println!("corpus: {lines} findings");
    assert!(lines > 0, "the corpus yields findings");
    assert_eq!(run("backfill", &inputs, &[]).stdout, scan, "1 worker");
    assert_eq!(
        run("backfill", &inputs, &["-w", "2"]).stdout,
        scan,
        "2 workers"
    );
    assert_eq!(run_cluster(&inputs), scan, "2 processes");
}
