//! Measures the heap the dataflow keeps per component instance, to check the ≤150
//! bytes/instance budget. Ignored by default: it loads a million instances.
//!
//! Run it with `cargo test -p recheck-dataflows --test footprint -- --ignored --nocapture`; the
//! dev profile builds dependencies at opt-level 2, and the figure is live heap, so the profile
//! changes its speed, not the bytes it reports.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use recheck_dataflows::{build, Order, Query, RangeEvaluator, Target, Time, VexStatus};

/// Counts live heap bytes, which (unlike RSS) excludes memory the allocator keeps after frees.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers every call to `System`, only adding bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone)]
struct Prefix;

impl RangeEvaluator for Prefix {
    type Spec = u8;
    type Reason = u8;
    fn evaluate(&self, spec: &u8, version: &str) -> Option<u8> {
        version
            .as_bytes()
            .first()
            .is_some_and(|b| b == spec)
            .then_some(0)
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A cheap deterministic mix so the load has realistic key spread without an RNG dependency.
fn mix(x: u64) -> u64 {
    let x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
}

/// The digest key of an artifact.
fn artifact_key(artifact: u64) -> u64 {
    2 << 40 | artifact
}

#[test]
#[ignore = "loads 1M instances; run with --ignored --nocapture"]
fn bytes_per_instance() {
    const INSTANCES: u64 = 1_000_000;
    const PER_ARTIFACT: u64 = 100;
    const PACKAGES: u64 = 50_000;
    const SCOPE: u64 = 4 << 40;
    // Keys as the root crate derives them: an artifact answers to its scope token and its
    // digest; a component (one purl at one version, shared by every artifact using it) to its
    // purl without and with version and its bom-ref.
    timely::execute_directly(|worker| {
        let (mut inputs, capture) = worker.dataflow::<Time, _, _>(|scope| {
            let (inputs, outputs) = build(scope, Prefix);
            (inputs, outputs.capture())
        });
        let before = status_kib("VmRSS:");
        let live_before = LIVE.load(Ordering::Relaxed);
        for package in 0..PACKAGES {
            for version in 0..3u64 {
                inputs
                    .versions
                    .insert((package, version, format!("{version}.{package}.0")));
                let component = package * 3 + version;
                for key in [
                    package,
                    1 << 40 | package << 2 | version,
                    3 << 40 | component,
                ] {
                    inputs.component_keys.insert((component, key));
                }
            }
        }
        for advisory in 0..2_000u64 {
            let package = mix(advisory) % PACKAGES;
            inputs.entries.insert((package, advisory, 0, b'1'));
            inputs.severities.insert((advisory, 2));
            inputs
                .names
                .insert((advisory, advisory, format!("GHSA-{advisory}")));
            let cve = advisory / 2;
            inputs
                .names
                .insert((advisory, 1 << 32 | cve, format!("CVE-2024-{cve}")));
        }
        // An artifact lists a component once, so equal draws within one artifact collapse.
        let mut instances = 0u64;
        for artifact in 0..INSTANCES / PER_ARTIFACT {
            inputs.artifact_keys.insert((artifact, SCOPE));
            inputs
                .artifact_keys
                .insert((artifact, artifact_key(artifact)));
            let mut components = BTreeSet::new();
            for slot in 0..PER_ARTIFACT {
                let draw = artifact * PER_ARTIFACT + slot;
                let package = mix(draw) % PACKAGES;
                let version = mix(draw + 7) % 3;
                let component = package * 3 + version;
                if components.insert(component) {
                    inputs
                        .instances
                        .insert((artifact, component, package, version));
                    instances += 1;
                }
            }
        }
        for statement in 0..1_000u64 {
            let order = Order {
                timestamp_nanos: statement as i64,
                sequence: 0,
            };
            // The id the advisories above give `CVE-2024-{statement}`.
            let name = 1 << 32 | statement;
            let target = if statement % 4 == 0 {
                Target::Artifact {
                    artifact: artifact_key(mix(statement) % (INSTANCES / PER_ARTIFACT)),
                    sub: None,
                }
            } else {
                Target::Package {
                    scope: SCOPE,
                    package: mix(statement) % PACKAGES,
                }
            };
            inputs
                .statements
                .insert((statement, name, target, order, VexStatus::NotAffected));
        }
        inputs.queries.insert((0, Query::Package(1)));
        inputs.advance_to(1);
        inputs.flush();
        worker.step_or_park_while(None, || capture.probe.less_than(&1));
        let rows = capture.rows.borrow().len();
        capture.rows.borrow_mut().clear();
        for _ in 0..20 {
            let time = inputs.time() + 1;
            inputs.advance_to(time);
            inputs.flush();
            worker.step_or_park_while(None, || capture.probe.less_than(&time));
        }
        let after = status_kib("VmRSS:");
        let peak = status_kib("VmHWM:");
        let live = LIVE.load(Ordering::Relaxed).saturating_sub(live_before) as u64;
        let per_instance = live / instances;
        println!(
            "{instances} instances, rows {rows}; live heap {live} B = {per_instance} B/instance; \
             rss {before} -> {after} KiB, peak {peak} KiB"
        );
        assert!(
            instances > 990_000 && rows > 1000,
            "{instances} instances, {rows} rows"
        );
        assert!(per_instance <= 150, "{per_instance} B/instance over budget");
    });
}
