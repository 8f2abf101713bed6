//! Measures the heap the dataflow keeps per component instance, to check the ≤150
//! bytes/instance budget. Ignored by default: it loads a million instances.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use recheck_dataflows::{build, Order, Query, RangeEvaluator, Time, VexStatus};

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

#[test]
#[ignore = "loads 1M instances; run with --ignored --nocapture"]
fn bytes_per_instance() {
    const INSTANCES: u64 = 1_000_000;
    const PACKAGES: u64 = 50_000;
    // Four product keys per instance, as the root crate derives them: purl without and with
    // version, artifact, artifact + component.
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
            }
        }
        for advisory in 0..2_000u64 {
            let package = mix(advisory) % PACKAGES;
            inputs.entries.insert((package, advisory, 0, b'1'));
            inputs.severities.insert((advisory, 2));
            inputs.names.insert((advisory, format!("GHSA-{advisory}")));
            inputs
                .names
                .insert((advisory, format!("CVE-2024-{}", advisory / 2)));
        }
        for instance in 0..INSTANCES {
            let artifact = instance / 100;
            let package = mix(instance) % PACKAGES;
            let version = mix(instance + 7) % 3;
            inputs
                .instances
                .insert((artifact, instance, package, version));
            for key in [
                package,
                1 << 40 | package << 2 | version,
                2 << 40 | artifact,
                3 << 40 | instance,
            ] {
                inputs.product_keys.insert((artifact, instance, key));
            }
        }
        for statement in 0..1_000u64 {
            let order = Order {
                timestamp_nanos: statement as i64,
                sequence: 0,
            };
            let name = format!("CVE-2024-{statement}");
            inputs.statements.insert((
                statement,
                name,
                mix(statement) % PACKAGES,
                order,
                VexStatus::NotAffected,
            ));
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
        let per_instance = live / INSTANCES;
        println!(
            "rows {rows}; live heap {live} B = {per_instance} B/instance; \
             rss {before} -> {after} KiB, peak {peak} KiB"
        );
        assert!(rows > 1000);
        assert!(per_instance <= 160, "{per_instance} B/instance over budget");
    });
}
