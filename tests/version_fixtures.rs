//! Runs every version-ordering fixture in the shared corpus
//! (`data/versions/*.txt`: `<a> <op> <b>` lines from OSV's own comparison
//! fixtures) against the matching `Scheme`, prints a pass rate per file and
//! per ecosystem, and fails unless every supported one is at 100%.

mod common;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use recheck::versions::{sort_versions, Scheme};

/// Fixture file stem (before `-versions`) to ecosystem name.
fn ecosystem_of(file: &str) -> Option<&'static str> {
    let stem = file.split("-versions").next()?;
    Some(match stem {
        "alpine" => "Alpine",
        "cran" => "CRAN",
        "debian" => "Debian",
        "hackage" => "Hackage",
        "maven" => "Maven",
        "nuget" => "NuGet",
        "packagist" => "Packagist",
        "pub" => "Pub",
        "pypi" => "PyPI",
        "redhat" => "Red Hat",
        "rubygems" => "RubyGems",
        "semver" => "SemVer",
        _ => return None,
    })
}

fn scheme_of(ecosystem: &str) -> Option<Scheme> {
    if ecosystem == "SemVer" {
        Some(Scheme::SemVer)
    } else {
        Scheme::for_ecosystem(ecosystem)
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    total: usize,
    failures: Vec<String>,
}

impl Tally {
    fn line(&self, name: &str) -> String {
        let pct = if self.total == 0 {
            100.0
        } else {
            self.passed as f64 * 100.0 / self.total as f64
        };
        format!("{name}: {}/{} ({pct:.2}%)", self.passed, self.total)
    }
}

fn run_file(path: &Path, scheme: Scheme, tally: &mut Tally) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        tally.total += 1;
        let fields: Vec<&str> = trimmed.split(' ').collect();
        let [a, op, b] = fields.as_slice() else {
            tally.failures.push(format!(
                "{}:{}: malformed line {line:?}",
                path.display(),
                n + 1
            ));
            continue;
        };
        let expected = match *op {
            "<" => Ordering::Less,
            "=" => Ordering::Equal,
            ">" => Ordering::Greater,
            _ => {
                tally.failures.push(format!(
                    "{}:{}: unknown operator {op:?}",
                    path.display(),
                    n + 1
                ));
                continue;
            }
        };
        let forward = scheme.compare(a, b);
        let backward = scheme.compare(b, a);
        match (forward, backward) {
            (Ok(f), Ok(r)) if f == expected && r == expected.reverse() => tally.passed += 1,
            (f, r) => tally.failures.push(format!(
                "{}:{}: {a} {op} {b}: got {f:?}, reversed {r:?}",
                path.display(),
                n + 1
            )),
        }
    }
}

#[test]
fn every_fixture_file_orders_correctly() {
    let Some(dir) = common::shared_data().map(|d| d.join("versions")) else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixture files in {}", dir.display());

    let mut per_ecosystem: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut unsupported = Vec::new();
    println!("version fixtures in {}:", dir.display());
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((ecosystem, scheme)) =
            ecosystem_of(&name).and_then(|e| scheme_of(e).map(|s| (e, s)))
        else {
            unsupported.push(name);
            continue;
        };
        let mut tally = Tally::default();
        run_file(path, scheme, &mut tally);
        println!("  {}", tally.line(&name));
        let total = per_ecosystem.entry(ecosystem).or_default();
        total.passed += tally.passed;
        total.total += tally.total;
        total.failures.append(&mut tally.failures);
    }
    println!("per ecosystem:");
    let mut failed = Vec::new();
    for (ecosystem, tally) in &per_ecosystem {
        println!("  {}", tally.line(ecosystem));
        if tally.passed != tally.total || tally.total == 0 {
            failed.push(*ecosystem);
            for f in tally.failures.iter().take(25) {
                println!("    FAIL {f}");
            }
        }
    }
    for name in &unsupported {
        println!("  {name}: no ecosystem for this file (not run)");
    }
    assert!(
        unsupported.is_empty(),
        "fixture files without an ecosystem: {unsupported:?}"
    );
    assert!(failed.is_empty(), "ecosystems below 100%: {failed:?}");
}

/// Sorting the versions of a fixture file must agree with its `<` lines:
/// a cheap check that `Ord` is consistent across many values at once.
#[test]
fn sort_versions_agrees_with_less_than_lines() {
    let Some(dir) = common::shared_data().map(|d| d.join("versions")) else {
        return;
    };
    for (file, scheme) in [
        ("debian-versions-generated.txt", Scheme::Dpkg),
        ("pypi-versions-generated.txt", Scheme::Pep440),
        ("rubygems-versions-generated.txt", Scheme::RubyGems),
    ] {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("reading {file}: {e}"));
        let pairs: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                match f.as_slice() {
                    [a, "<", b] => Some((a.to_string(), b.to_string())),
                    _ => None,
                }
            })
            .collect();
        assert!(pairs.len() > 500, "{file}: only {} `<` lines", pairs.len());
        let mut all: Vec<String> = pairs
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        all.sort();
        all.dedup();
        let (sorted, errors) = sort_versions(scheme, &all);
        assert!(errors.is_empty(), "{file}: {errors:?}");
        let position: BTreeMap<&str, usize> = sorted
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_str(), i))
            .collect();
        let bad = pairs
            .iter()
            .filter(|(a, b)| position.get(a.as_str()) >= position.get(b.as_str()))
            .count();
        println!(
            "{file}: {} versions sorted, {} `<` pairs, {bad} out of order",
            sorted.len(),
            pairs.len()
        );
        assert_eq!(bad, 0, "{file}");
    }
}

/// Over every real advisory in the corpus: each range's own `introduced`
/// versions are inside it and its `fixed` versions are not; for PyPI, whose
/// `versions[]` OSV fills in from the ECOSYSTEM ranges, every listed version
/// is inside some range.
#[test]
fn real_advisories_agree_with_their_own_events() {
    use recheck::model::{RangeEvent, RangeKind};
    use recheck::versions::{CompiledAffected, RangeMatch};
    let Some(osv) = common::shared_data().map(|d| d.join("osv")) else {
        return;
    };
    for corpus in ["pypi", "crates"] {
        let files = common::json_files(&osv.join(corpus));
        let (mut advisories, mut events, mut listed, mut unusable) = (0, 0, 0, 0);
        let mut failures = Vec::new();
        for path in &files {
            let name = path.display().to_string();
            let advisory = recheck::formats::osv::parse_advisory(&name, &common::read(path))
                .unwrap_or_else(|e| panic!("{e}"));
            advisories += 1;
            for (i, entry) in advisory.affected.iter().enumerate() {
                let whole = CompiledAffected::new(entry, i);
                unusable += whole.unusable_ranges();
                for range in entry.ranges.iter().filter(|r| r.kind != RangeKind::Git) {
                    let mut single = entry.clone();
                    single.versions.clear();
                    single.ranges = vec![range.clone()];
                    let c = CompiledAffected::new(&single, i);
                    // `introduced: X` with `fixed: X` in the same range is an
                    // empty interval (PYSEC-2022-42972 has one; OSV's own
                    // versions[] confirms 0.13.x is not affected there).
                    let fixed_at =
                        |v: &String| range.events.contains(&RangeEvent::Fixed(v.clone()));
                    for event in &range.events {
                        let (v, want) = match event {
                            RangeEvent::Introduced(v) if v != "0" && !fixed_at(v) => (v, true),
                            RangeEvent::Fixed(v) => (v, false),
                            _ => continue,
                        };
                        events += 1;
                        if matches!(c.matches(v), RangeMatch::Affected(_)) != want {
                            failures
                                .push(format!("{}: {event:?} affected != {want}", path.display()));
                        }
                    }
                }
                if corpus == "pypi" {
                    let mut ranges_only = entry.clone();
                    ranges_only.versions.clear();
                    let c = CompiledAffected::new(&ranges_only, i);
                    for v in &entry.versions {
                        listed += 1;
                        if c.matches(v) == RangeMatch::NotAffected {
                            failures.push(format!(
                                "{}: listed {v} is outside the ranges",
                                path.display()
                            ));
                        }
                    }
                }
            }
        }
        println!(
            "osv/{corpus}: {advisories} advisories, {events} range events checked, {listed} listed versions checked, {unusable} unusable ranges, {} failures",
            failures.len()
        );
        for f in failures.iter().take(20) {
            println!("  FAIL {f}");
        }
        assert!(
            advisories > 100,
            "osv/{corpus}: only {advisories} advisories"
        );
        assert!(events > 100, "osv/{corpus}: only {events} events");
        assert_eq!(unusable, 0, "osv/{corpus}: unusable ranges");
        assert!(
            failures.is_empty(),
            "osv/{corpus}: {} failures",
            failures.len()
        );
    }
}
