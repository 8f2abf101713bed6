//! CVSS vectors → base score and rating. OSV severity entries carry only the
//! vector string, so the score that policy and reports sort by has to be
//! computed here: CVSS v2, v3.0/v3.1 (base equations and their Roundup) and
//! v4.0 (the specification's MacroVector lookup with severity-distance
//! interpolation).

use std::collections::BTreeMap;

use crate::model::{Rating, SeverityScore};

/// Why a vector could not be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} vector {vector:?}: {reason}")]
pub struct CvssError {
    pub kind: String,
    pub vector: String,
    pub reason: String,
}

/// Score an OSV severity entry (`type`, `score`); `None` for kinds we do not
/// score and for vectors that are not valid (see [`evaluate`] for the reason).
pub fn score(kind: &str, vector: &str) -> Option<SeverityScore> {
    evaluate(kind, vector).ok().flatten()
}

/// Like [`score`], but says why a vector of a CVSS kind is unusable:
/// `Ok(None)` for kinds that are not CVSS (`Ubuntu`, ...), `Err` for a CVSS
/// kind whose vector does not parse.
pub fn evaluate(kind: &str, vector: &str) -> Result<Option<SeverityScore>, CvssError> {
    let fail = |reason: String| CvssError {
        kind: kind.to_string(),
        vector: vector.to_string(),
        reason,
    };
    let scored = match kind {
        "CVSS_V2" => v2_score(vector).map(|s| SeverityScore {
            score: s,
            rating: v2_rating(s),
        }),
        "CVSS_V3" => v3_score(vector).map(banded),
        "CVSS_V4" => v4_score(vector).map(banded),
        _ => return Ok(None),
    };
    scored.map(Some).map_err(fail)
}

fn banded(score: f64) -> SeverityScore {
    SeverityScore {
        score,
        rating: Rating::from_score(score),
    }
}

/// NVD's v2 bands are the v3 bands with "critical" folded into "high".
fn v2_rating(score: f64) -> Rating {
    Rating::from_score(score).min(Rating::High)
}

/// Split `K:V/K:V/...` into a map, rejecting duplicates, unknown metrics and
/// values outside each metric's allowed set.
fn metrics<'a>(
    body: &'a str,
    allowed: &[(&'static str, &[&str])],
) -> Result<BTreeMap<&'static str, &'a str>, String> {
    let mut out = BTreeMap::new();
    for part in body.split('/') {
        let Some((key, value)) = part.split_once(':') else {
            return Err(format!("component {part:?} is not METRIC:VALUE"));
        };
        let Some((name, values)) = allowed.iter().find(|(n, _)| *n == key) else {
            return Err(format!("unknown metric {key:?}"));
        };
        if !values.contains(&value) {
            return Err(format!("metric {key} has invalid value {value:?}"));
        }
        if out.insert(*name, value).is_some() {
            return Err(format!("metric {key} appears twice"));
        }
    }
    Ok(out)
}

fn required(m: &BTreeMap<&'static str, &str>, names: &[&str]) -> Result<(), String> {
    match names.iter().find(|n| !m.contains_key(*n)) {
        Some(missing) => Err(format!("base metric {missing} is missing")),
        None => Ok(()),
    }
}

/// Look up a metric's numeric weight; the metric was validated by
/// [`metrics`], so a miss only means "not present" and weighs nothing.
fn weight(m: &BTreeMap<&'static str, &str>, name: &str, table: &[(&str, f64)]) -> f64 {
    m.get(name)
        .and_then(|v| table.iter().find(|(k, _)| k == v))
        .map_or(0.0, |(_, w)| *w)
}

// ---------------------------------------------------------------- CVSS v2

const V2_METRICS: &[(&str, &[&str])] = &[
    ("AV", &["L", "A", "N"]),
    ("AC", &["H", "M", "L"]),
    ("Au", &["M", "S", "N"]),
    ("C", &["N", "P", "C"]),
    ("I", &["N", "P", "C"]),
    ("A", &["N", "P", "C"]),
    ("E", &["U", "POC", "F", "H", "ND"]),
    ("RL", &["OF", "TF", "W", "U", "ND"]),
    ("RC", &["UC", "UR", "C", "ND"]),
    ("CDP", &["N", "L", "LM", "MH", "H", "ND"]),
    ("TD", &["N", "L", "M", "H", "ND"]),
    ("CR", &["L", "M", "H", "ND"]),
    ("IR", &["L", "M", "H", "ND"]),
    ("AR", &["L", "M", "H", "ND"]),
];

fn v2_score(vector: &str) -> Result<f64, String> {
    let body = vector.trim();
    let body = body
        .strip_prefix('(')
        .and_then(|b| b.strip_suffix(')'))
        .unwrap_or(body);
    let body = body.strip_prefix("CVSS:2.0/").unwrap_or(body);
    let m = metrics(body, V2_METRICS)?;
    required(&m, &["AV", "AC", "Au", "C", "I", "A"])?;
    let cia = [("N", 0.0), ("P", 0.275), ("C", 0.660)];
    let impact = 10.41
        * (1.0
            - (1.0 - weight(&m, "C", &cia))
                * (1.0 - weight(&m, "I", &cia))
                * (1.0 - weight(&m, "A", &cia)));
    let exploitability = 20.0
        * weight(&m, "AV", &[("L", 0.395), ("A", 0.646), ("N", 1.0)])
        * weight(&m, "AC", &[("H", 0.35), ("M", 0.61), ("L", 0.71)])
        * weight(&m, "Au", &[("M", 0.45), ("S", 0.56), ("N", 0.704)]);
    let f = if impact == 0.0 { 0.0 } else { 1.176 };
    let base = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f;
    Ok(round_half_up(base.max(0.0)))
}

/// Round to one decimal, halves up; the epsilon absorbs binary
/// representation error (4.25 stored as 4.2499999...).
fn round_half_up(x: f64) -> f64 {
    (((x + 1e-6) * 10.0) + 0.5).floor() / 10.0
}

// ---------------------------------------------------------------- CVSS v3

const V3_METRICS: &[(&str, &[&str])] = &[
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "R"]),
    ("S", &["U", "C"]),
    ("C", &["H", "L", "N"]),
    ("I", &["H", "L", "N"]),
    ("A", &["H", "L", "N"]),
    ("E", &["X", "U", "P", "F", "H"]),
    ("RL", &["X", "O", "T", "W", "U"]),
    ("RC", &["X", "U", "R", "C"]),
    ("CR", &["X", "L", "M", "H"]),
    ("IR", &["X", "L", "M", "H"]),
    ("AR", &["X", "L", "M", "H"]),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "R"]),
    ("MS", &["X", "U", "C"]),
    ("MC", &["X", "H", "L", "N"]),
    ("MI", &["X", "H", "L", "N"]),
    ("MA", &["X", "H", "L", "N"]),
];

fn v3_score(vector: &str) -> Result<f64, String> {
    let vector = vector.trim();
    let (minor, body) = if let Some(b) = vector.strip_prefix("CVSS:3.1/") {
        (1, b)
    } else if let Some(b) = vector.strip_prefix("CVSS:3.0/") {
        (0, b)
    } else {
        return Err("expected prefix CVSS:3.0/ or CVSS:3.1/".to_string());
    };
    let m = metrics(body, V3_METRICS)?;
    required(&m, &["AV", "AC", "PR", "UI", "S", "C", "I", "A"])?;
    let changed = m.get("S") == Some(&"C");
    let cia = [("H", 0.56), ("L", 0.22), ("N", 0.0)];
    let iss = 1.0
        - (1.0 - weight(&m, "C", &cia))
            * (1.0 - weight(&m, "I", &cia))
            * (1.0 - weight(&m, "A", &cia));
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let pr: &[(&str, f64)] = if changed {
        &[("N", 0.85), ("L", 0.68), ("H", 0.5)]
    } else {
        &[("N", 0.85), ("L", 0.62), ("H", 0.27)]
    };
    let exploitability =
        8.22 * weight(
            &m,
            "AV",
            &[("N", 0.85), ("A", 0.62), ("L", 0.55), ("P", 0.2)],
        ) * weight(&m, "AC", &[("L", 0.77), ("H", 0.44)])
            * weight(&m, "PR", pr)
            * weight(&m, "UI", &[("N", 0.85), ("R", 0.62)]);
    if impact <= 0.0 {
        return Ok(0.0);
    }
    let raw = if changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Ok(if minor == 1 {
        roundup_31(raw)
    } else {
        roundup_30(raw)
    })
}

/// v3.0 Roundup: the smallest one-decimal number not below the input.
fn roundup_30(x: f64) -> f64 {
    (x * 10.0).ceil() / 10.0
}

/// v3.1 Roundup (specification Appendix A): works on an integer of five
/// decimals so that e.g. 4.000000000000001 does not round up to 4.1.
fn roundup_31(x: f64) -> f64 {
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

// ---------------------------------------------------------------- CVSS v4.0

const V4_METRICS: &[(&str, &[&str])] = &[
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("AT", &["N", "P"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "P", "A"]),
    ("VC", &["H", "L", "N"]),
    ("VI", &["H", "L", "N"]),
    ("VA", &["H", "L", "N"]),
    ("SC", &["H", "L", "N"]),
    ("SI", &["H", "L", "N"]),
    ("SA", &["H", "L", "N"]),
    ("E", &["X", "A", "P", "U"]),
    ("CR", &["X", "H", "M", "L"]),
    ("IR", &["X", "H", "M", "L"]),
    ("AR", &["X", "H", "M", "L"]),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MAT", &["X", "N", "P"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "P", "A"]),
    ("MVC", &["X", "H", "L", "N"]),
    ("MVI", &["X", "H", "L", "N"]),
    ("MVA", &["X", "H", "L", "N"]),
    ("MSC", &["X", "H", "L", "N"]),
    ("MSI", &["X", "S", "H", "L", "N"]),
    ("MSA", &["X", "S", "H", "L", "N"]),
    // Supplemental metrics are valid in a vector but never change the score.
    ("S", &["X", "N", "P"]),
    ("AU", &["X", "N", "Y"]),
    ("R", &["X", "A", "U", "I"]),
    ("V", &["X", "D", "C"]),
    ("RE", &["X", "L", "M", "H"]),
    ("U", &["X", "Clear", "Green", "Amber", "Red"]),
];

const V4_BASE: &[&str] = &[
    "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA",
];

/// A validated v4.0 vector, answering with the value each metric takes once
/// threat and environmental metrics are applied (specification §8).
struct V4<'a>(BTreeMap<&'static str, &'a str>);

impl V4<'_> {
    fn get(&self, metric: &str) -> &str {
        let raw = self.0.get(metric).copied().unwrap_or("X");
        // Unset threat/requirement metrics assume the worst case.
        match (metric, raw) {
            ("E", "X") => return "A",
            ("CR" | "IR" | "AR", "X") => return "H",
            _ => {}
        }
        let modified = match metric {
            "AV" => "MAV",
            "AC" => "MAC",
            "AT" => "MAT",
            "PR" => "MPR",
            "UI" => "MUI",
            "VC" => "MVC",
            "VI" => "MVI",
            "VA" => "MVA",
            "SC" => "MSC",
            "SI" => "MSI",
            "SA" => "MSA",
            _ => return raw,
        };
        match self.0.get(modified) {
            Some(&m) if m != "X" => m,
            _ => raw,
        }
    }

    fn is(&self, metric: &str, value: &str) -> bool {
        self.get(metric) == value
    }

    /// The MacroVector: the six equivalence-class levels EQ1..EQ6.
    fn macro_vector(&self) -> [u8; 6] {
        let (av_n, pr_n, ui_n) = (self.is("AV", "N"), self.is("PR", "N"), self.is("UI", "N"));
        let eq1 = if av_n && pr_n && ui_n {
            0
        } else if (av_n || pr_n || ui_n) && !self.is("AV", "P") {
            1
        } else {
            2
        };
        let eq2 = if self.is("AC", "L") && self.is("AT", "N") {
            0
        } else {
            1
        };
        let (vc_h, vi_h, va_h) = (self.is("VC", "H"), self.is("VI", "H"), self.is("VA", "H"));
        let eq3 = if vc_h && vi_h {
            0
        } else if vc_h || vi_h || va_h {
            1
        } else {
            2
        };
        let eq4 = if self.is("SI", "S") || self.is("SA", "S") {
            0
        } else if self.is("SC", "H") || self.is("SI", "H") || self.is("SA", "H") {
            1
        } else {
            2
        };
        let eq5 = match self.get("E") {
            "U" => 2,
            "P" => 1,
            _ => 0,
        };
        let eq6 = if (self.is("CR", "H") && vc_h)
            || (self.is("IR", "H") && vi_h)
            || (self.is("AR", "H") && va_h)
        {
            0
        } else {
            1
        };
        [eq1, eq2, eq3, eq4, eq5, eq6]
    }

    /// Severity level of a metric value in tenths (0 = most severe), the
    /// unit the specification measures distances within a MacroVector in.
    fn level(metric: &str, value: &str) -> i32 {
        let order: &[&str] = match metric {
            "AV" => &["N", "A", "L", "P"],
            "PR" => &["N", "L", "H"],
            "UI" => &["N", "P", "A"],
            "AC" => &["L", "H"],
            "AT" => &["N", "P"],
            "VC" | "VI" | "VA" => &["H", "L", "N"],
            // SC has no "S" value but shares the scale's offset with SI/SA.
            "SC" => &["S", "H", "L", "N"],
            "SI" | "SA" => &["S", "H", "L", "N"],
            _ => &["H", "M", "L"],
        };
        order
            .iter()
            .position(|v| *v == value)
            .map_or(0, |p| p as i32)
    }
}

/// Highest-severity vectors of each EQ level, as (metric, value) lists; the
/// EQ3 entry is indexed by EQ3 then EQ6 because those two are scored jointly.
fn max_vectors(
    eq: usize,
    level: u8,
    eq6: u8,
) -> &'static [&'static [(&'static str, &'static str)]] {
    match (eq, level, eq6) {
        (1, 0, _) => &[&[("AV", "N"), ("PR", "N"), ("UI", "N")]],
        (1, 1, _) => &[
            &[("AV", "A"), ("PR", "N"), ("UI", "N")],
            &[("AV", "N"), ("PR", "L"), ("UI", "N")],
            &[("AV", "N"), ("PR", "N"), ("UI", "P")],
        ],
        (1, _, _) => &[
            &[("AV", "P"), ("PR", "N"), ("UI", "N")],
            &[("AV", "A"), ("PR", "L"), ("UI", "P")],
        ],
        (2, 0, _) => &[&[("AC", "L"), ("AT", "N")]],
        (2, _, _) => &[&[("AC", "H"), ("AT", "N")], &[("AC", "L"), ("AT", "P")]],
        (3, 0, 0) => &[&[
            ("VC", "H"),
            ("VI", "H"),
            ("VA", "H"),
            ("CR", "H"),
            ("IR", "H"),
            ("AR", "H"),
        ]],
        (3, 0, _) => &[
            &[
                ("VC", "H"),
                ("VI", "H"),
                ("VA", "L"),
                ("CR", "M"),
                ("IR", "M"),
                ("AR", "H"),
            ],
            &[
                ("VC", "H"),
                ("VI", "H"),
                ("VA", "H"),
                ("CR", "M"),
                ("IR", "M"),
                ("AR", "M"),
            ],
        ],
        (3, 1, 0) => &[
            &[
                ("VC", "L"),
                ("VI", "H"),
                ("VA", "H"),
                ("CR", "H"),
                ("IR", "H"),
                ("AR", "H"),
            ],
            &[
                ("VC", "H"),
                ("VI", "L"),
                ("VA", "H"),
                ("CR", "H"),
                ("IR", "H"),
                ("AR", "H"),
            ],
        ],
        (3, 1, _) => &[
            &[
                ("VC", "L"),
                ("VI", "H"),
                ("VA", "L"),
                ("CR", "H"),
                ("IR", "M"),
                ("AR", "H"),
            ],
            &[
                ("VC", "L"),
                ("VI", "H"),
                ("VA", "H"),
                ("CR", "H"),
                ("IR", "M"),
                ("AR", "M"),
            ],
            &[
                ("VC", "H"),
                ("VI", "L"),
                ("VA", "H"),
                ("CR", "M"),
                ("IR", "H"),
                ("AR", "M"),
            ],
            &[
                ("VC", "H"),
                ("VI", "L"),
                ("VA", "L"),
                ("CR", "M"),
                ("IR", "H"),
                ("AR", "H"),
            ],
            &[
                ("VC", "L"),
                ("VI", "L"),
                ("VA", "H"),
                ("CR", "H"),
                ("IR", "H"),
                ("AR", "M"),
            ],
        ],
        (3, _, _) => &[&[
            ("VC", "L"),
            ("VI", "L"),
            ("VA", "L"),
            ("CR", "H"),
            ("IR", "H"),
            ("AR", "H"),
        ]],
        (_, 0, _) => &[&[("SC", "H"), ("SI", "S"), ("SA", "S")]],
        (_, 1, _) => &[&[("SC", "H"), ("SI", "H"), ("SA", "H")]],
        _ => &[&[("SC", "L"), ("SI", "L"), ("SA", "L")]],
    }
}

/// Depth of a MacroVector level in tenths: the specification's maximal
/// severity distance within that level plus one step, for EQ1, EQ2, EQ3+EQ6
/// (by EQ3 and EQ6) and EQ4.
fn depth(eq: usize, level: u8, eq6: u8) -> f64 {
    let tenths = match (eq, level, eq6) {
        (1, 0, _) => 1,
        (1, 1, _) => 4,
        (1, _, _) => 5,
        (2, 0, _) => 1,
        (2, _, _) => 2,
        (3, 0, 0) => 7,
        (3, 0, _) => 6,
        (3, 1, _) => 8,
        (3, _, _) => 10,
        (_, 0, _) => 6,
        (_, 1, _) => 5,
        _ => 4,
    };
    f64::from(tenths)
}

fn macro_score(mv: [u8; 6]) -> Option<f64> {
    let key: String = mv.iter().map(|d| char::from(b'0' + d)).collect();
    MACROVECTOR_SCORES
        .binary_search_by(|(k, _)| k.cmp(&key.as_str()))
        .ok()
        .and_then(|i| MACROVECTOR_SCORES.get(i))
        .map(|(_, tenths)| f64::from(*tenths) / 10.0)
}

fn bump(mv: [u8; 6], eq: usize) -> [u8; 6] {
    let mut next = mv;
    if let Some(d) = next.get_mut(eq) {
        *d += 1;
    }
    next
}

fn v4_score(vector: &str) -> Result<f64, String> {
    let body = vector
        .trim()
        .strip_prefix("CVSS:4.0/")
        .ok_or_else(|| "expected prefix CVSS:4.0/".to_string())?;
    let m = metrics(body, V4_METRICS)?;
    required(&m, V4_BASE)?;
    let v = V4(m);
    if ["VC", "VI", "VA", "SC", "SI", "SA"]
        .iter()
        .all(|x| v.is(x, "N"))
    {
        return Ok(0.0);
    }
    let mv = v.macro_vector();
    let [eq1, eq2, eq3, eq4, _, eq6] = mv;
    let value = macro_score(mv).ok_or_else(|| "MacroVector has no score".to_string())?;

    // The next lower MacroVector per EQ; EQ3 and EQ6 move together, and from
    // 00 both 01 and 10 are lower, the higher-scored one counts.
    let lower_eq3eq6 = match (eq3, eq6) {
        (0, 0) => match (macro_score(bump(mv, 5)), macro_score(bump(mv, 2))) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
        (1, 0) => macro_score(bump(mv, 5)),
        (0 | 1, _) => macro_score(bump(mv, 2)),
        _ => None,
    };
    let lower = [
        macro_score(bump(mv, 0)),
        macro_score(bump(mv, 1)),
        lower_eq3eq6,
        macro_score(bump(mv, 3)),
        macro_score(bump(mv, 4)),
    ];

    // Distance from the first highest-severity vector of this MacroVector
    // that is at least as severe as ours in every metric.
    let groups = [
        max_vectors(1, eq1, 0),
        max_vectors(2, eq2, 0),
        max_vectors(3, eq3, eq6),
        max_vectors(4, eq4, 0),
    ];
    let mut distances = [0i32; 4];
    'search: for a in groups[0] {
        for b in groups[1] {
            for c in groups[2] {
                for d in groups[3] {
                    let mut found = [0i32; 4];
                    let mut ok = true;
                    for (slot, part) in [a, b, c, d].iter().enumerate() {
                        for (metric, max_value) in part.iter() {
                            let dist =
                                V4::level(metric, v.get(metric)) - V4::level(metric, max_value);
                            ok &= dist >= 0;
                            found[slot] += dist;
                        }
                    }
                    distances = found;
                    if ok {
                        break 'search;
                    }
                }
            }
        }
    }

    let depths = [
        depth(1, eq1, 0),
        depth(2, eq2, 0),
        depth(3, eq3, eq6),
        depth(4, eq4, 0),
    ];
    let mut total = 0.0;
    let mut existing = 0u32;
    for (i, next) in lower.iter().enumerate() {
        let Some(next) = next else { continue };
        existing += 1;
        // EQ5 has depth zero: every vector sits at its MacroVector's top.
        if let (Some(dist), Some(depth)) = (distances.get(i), depths.get(i)) {
            total += (value - next) * f64::from(*dist) / depth;
        }
    }
    let mean = if existing == 0 {
        0.0
    } else {
        total / f64::from(existing)
    };
    Ok(round_half_up((value - mean).clamp(0.0, 10.0)))
}

/// Scores of the 270 MacroVectors (EQ1..EQ6 digits → base score in tenths),
/// from the CVSS v4.0 specification's data table, sorted by key.
const MACROVECTOR_SCORES: [(&str, u8); 270] = [
    ("000000", 100),
    ("000001", 99),
    ("000010", 98),
    ("000011", 95),
    ("000020", 95),
    ("000021", 92),
    ("000100", 100),
    ("000101", 96),
    ("000110", 93),
    ("000111", 87),
    ("000120", 91),
    ("000121", 81),
    ("000200", 93),
    ("000201", 90),
    ("000210", 89),
    ("000211", 80),
    ("000220", 81),
    ("000221", 68),
    ("001000", 98),
    ("001001", 95),
    ("001010", 95),
    ("001011", 92),
    ("001020", 90),
    ("001021", 84),
    ("001100", 93),
    ("001101", 92),
    ("001110", 89),
    ("001111", 81),
    ("001120", 81),
    ("001121", 65),
    ("001200", 88),
    ("001201", 80),
    ("001210", 78),
    ("001211", 70),
    ("001220", 69),
    ("001221", 48),
    ("002001", 92),
    ("002011", 82),
    ("002021", 72),
    ("002101", 79),
    ("002111", 69),
    ("002121", 50),
    ("002201", 69),
    ("002211", 55),
    ("002221", 27),
    ("010000", 99),
    ("010001", 97),
    ("010010", 95),
    ("010011", 92),
    ("010020", 92),
    ("010021", 85),
    ("010100", 95),
    ("010101", 91),
    ("010110", 90),
    ("010111", 83),
    ("010120", 84),
    ("010121", 71),
    ("010200", 92),
    ("010201", 81),
    ("010210", 82),
    ("010211", 71),
    ("010220", 72),
    ("010221", 53),
    ("011000", 95),
    ("011001", 93),
    ("011010", 92),
    ("011011", 85),
    ("011020", 85),
    ("011021", 73),
    ("011100", 92),
    ("011101", 82),
    ("011110", 80),
    ("011111", 72),
    ("011120", 70),
    ("011121", 59),
    ("011200", 84),
    ("011201", 70),
    ("011210", 71),
    ("011211", 52),
    ("011220", 50),
    ("011221", 30),
    ("012001", 86),
    ("012011", 75),
    ("012021", 52),
    ("012101", 71),
    ("012111", 52),
    ("012121", 29),
    ("012201", 63),
    ("012211", 29),
    ("012221", 17),
    ("100000", 98),
    ("100001", 95),
    ("100010", 94),
    ("100011", 87),
    ("100020", 91),
    ("100021", 81),
    ("100100", 94),
    ("100101", 89),
    ("100110", 86),
    ("100111", 74),
    ("100120", 77),
    ("100121", 64),
    ("100200", 87),
    ("100201", 75),
    ("100210", 74),
    ("100211", 63),
    ("100220", 63),
    ("100221", 49),
    ("101000", 94),
    ("101001", 89),
    ("101010", 88),
    ("101011", 77),
    ("101020", 76),
    ("101021", 67),
    ("101100", 86),
    ("101101", 76),
    ("101110", 74),
    ("101111", 58),
    ("101120", 59),
    ("101121", 50),
    ("101200", 72),
    ("101201", 57),
    ("101210", 57),
    ("101211", 52),
    ("101220", 52),
    ("101221", 25),
    ("102001", 83),
    ("102011", 70),
    ("102021", 54),
    ("102101", 65),
    ("102111", 58),
    ("102121", 26),
    ("102201", 53),
    ("102211", 21),
    ("102221", 13),
    ("110000", 95),
    ("110001", 90),
    ("110010", 88),
    ("110011", 76),
    ("110020", 76),
    ("110021", 70),
    ("110100", 90),
    ("110101", 77),
    ("110110", 75),
    ("110111", 62),
    ("110120", 61),
    ("110121", 53),
    ("110200", 77),
    ("110201", 66),
    ("110210", 68),
    ("110211", 59),
    ("110220", 52),
    ("110221", 30),
    ("111000", 89),
    ("111001", 78),
    ("111010", 76),
    ("111011", 67),
    ("111020", 62),
    ("111021", 58),
    ("111100", 74),
    ("111101", 59),
    ("111110", 57),
    ("111111", 57),
    ("111120", 47),
    ("111121", 23),
    ("111200", 61),
    ("111201", 52),
    ("111210", 57),
    ("111211", 29),
    ("111220", 24),
    ("111221", 16),
    ("112001", 71),
    ("112011", 59),
    ("112021", 30),
    ("112101", 58),
    ("112111", 26),
    ("112121", 15),
    ("112201", 23),
    ("112211", 13),
    ("112221", 6),
    ("200000", 93),
    ("200001", 87),
    ("200010", 86),
    ("200011", 72),
    ("200020", 75),
    ("200021", 58),
    ("200100", 86),
    ("200101", 74),
    ("200110", 74),
    ("200111", 61),
    ("200120", 56),
    ("200121", 34),
    ("200200", 70),
    ("200201", 54),
    ("200210", 52),
    ("200211", 40),
    ("200220", 40),
    ("200221", 22),
    ("201000", 85),
    ("201001", 75),
    ("201010", 74),
    ("201011", 55),
    ("201020", 62),
    ("201021", 51),
    ("201100", 72),
    ("201101", 57),
    ("201110", 55),
    ("201111", 41),
    ("201120", 46),
    ("201121", 19),
    ("201200", 53),
    ("201201", 36),
    ("201210", 34),
    ("201211", 19),
    ("201220", 19),
    ("201221", 8),
    ("202001", 64),
    ("202011", 51),
    ("202021", 20),
    ("202101", 47),
    ("202111", 21),
    ("202121", 11),
    ("202201", 24),
    ("202211", 9),
    ("202221", 4),
    ("210000", 88),
    ("210001", 75),
    ("210010", 73),
    ("210011", 53),
    ("210020", 60),
    ("210021", 50),
    ("210100", 73),
    ("210101", 55),
    ("210110", 59),
    ("210111", 40),
    ("210120", 41),
    ("210121", 20),
    ("210200", 54),
    ("210201", 43),
    ("210210", 45),
    ("210211", 22),
    ("210220", 20),
    ("210221", 11),
    ("211000", 75),
    ("211001", 55),
    ("211010", 58),
    ("211011", 45),
    ("211020", 40),
    ("211021", 21),
    ("211100", 61),
    ("211101", 51),
    ("211110", 48),
    ("211111", 18),
    ("211120", 20),
    ("211121", 9),
    ("211200", 46),
    ("211201", 18),
    ("211210", 17),
    ("211211", 7),
    ("211220", 8),
    ("211221", 2),
    ("212001", 53),
    ("212011", 24),
    ("212021", 14),
    ("212101", 24),
    ("212111", 12),
    ("212121", 5),
    ("212201", 10),
    ("212211", 3),
    ("212221", 1),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(kind: &str, vector: &str) -> f64 {
        match evaluate(kind, vector) {
            Ok(Some(s)) => s.score,
            other => panic!("{vector}: {other:?}"),
        }
    }

    #[test]
    fn v3_vectors_match_nvd() {
        for (vector, expected) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3),
            ("CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 6.2),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O", 9.8),
        ] {
            assert_eq!(scored("CVSS_V3", vector), expected, "{vector}");
        }
        let critical = score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
        assert_eq!(critical.map(|s| s.rating), Some(Rating::Critical));
    }

    #[test]
    fn v31_roundup_ignores_float_noise() {
        assert_eq!(roundup_31(4.000_000_000_000_001), 4.0);
        assert_eq!(roundup_31(4.02), 4.1);
        assert_eq!(roundup_30(4.02), 4.1);
    }

    #[test]
    fn v2_vectors_match_nvd() {
        for (vector, expected) in [
            ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
            ("AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3),
            ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0),
            ("AV:L/AC:L/Au:N/C:P/I:N/A:N", 2.1),
            ("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", 7.5),
        ] {
            assert_eq!(scored("CVSS_V2", vector), expected, "{vector}");
        }
        assert_eq!(
            score("CVSS_V2", "AV:N/AC:L/Au:N/C:C/I:C/A:C").map(|s| s.rating),
            Some(Rating::High)
        );
    }

    /// FIRST's published v4.0 scores: the specification's reference
    /// calculator values for common vectors (e.g. 9.3 for the unauthenticated
    /// network RCE, 8.5 for the FIRST example CVE-2022-41741).
    #[test]
    fn v4_vectors_match_first() {
        for (vector, expected) in [
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
                10.0,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.5,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N",
                5.3,
            ),
            (
                "CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
                1.0,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U",
                9.1,
            ),
            (
                "CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:L/SC:L/SI:N/SA:L",
                5.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
                0.0,
            ),
            // Vectors from the RustSec / PyPA corpus.
            (
                "CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:A/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
                4.1,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                7.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:H/AT:N/PR:L/UI:A/VC:N/VI:N/VA:H/SC:N/SI:N/SA:H",
                6.8,
            ),
            (
                "CVSS:4.0/AV:N/AC:H/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:H/SI:N/SA:N",
                8.9,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:P/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
                6.9,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:H/SI:H/SA:N",
                9.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:P/VC:N/VI:N/VA:H/SC:N/SI:N/SA:H",
                6.9,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:N/SC:L/SI:L/SA:N",
                9.1,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:N",
                8.2,
            ),
        ] {
            assert_eq!(scored("CVSS_V4", vector), expected, "{vector}");
        }
    }

    /// Pseudo-random base, threat and environmental vectors with the scores
    /// the FIRST reference calculator gives them, to exercise every EQ
    /// level, the EQ3/EQ6 pairing and the modified metrics.
    #[test]
    fn v4_interpolation_matches_reference_calculator() {
        for (vector, expected) in [
        ("CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:P/VC:H/VI:H/VA:L/SC:H/SI:N/SA:L", 8.5),
        ("CVSS:4.0/AV:P/AC:L/AT:N/PR:H/UI:N/VC:H/VI:L/VA:N/SC:L/SI:H/SA:N", 6.8),
        ("CVSS:4.0/AV:N/AC:H/AT:N/PR:N/UI:A/VC:H/VI:L/VA:H/SC:L/SI:L/SA:H", 7.2),
        ("CVSS:4.0/AV:P/AC:L/AT:P/PR:L/UI:A/VC:H/VI:N/VA:L/SC:H/SI:N/SA:N", 5.6),
        ("CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:L/SC:H/SI:N/SA:L", 8.4),
        ("CVSS:4.0/AV:P/AC:H/AT:N/PR:L/UI:A/VC:H/VI:L/VA:N/SC:H/SI:N/SA:L", 5.7),
        ("CVSS:4.0/AV:L/AC:H/AT:N/PR:N/UI:N/VC:N/VI:H/VA:H/SC:H/SI:N/SA:N", 7.0),
        ("CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:P/VC:L/VI:N/VA:N/SC:N/SI:N/SA:L", 2.0),
        ("CVSS:4.0/AV:P/AC:L/AT:P/PR:N/UI:P/VC:N/VI:L/VA:H/SC:L/SI:L/SA:N", 4.3),
        ("CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:H/VI:N/VA:L/SC:L/SI:L/SA:N", 4.3),
        ("CVSS:4.0/AV:P/AC:L/AT:P/PR:N/UI:A/VC:L/VI:L/VA:N/SC:L/SI:H/SA:H", 2.3),
        ("CVSS:4.0/AV:P/AC:H/AT:N/PR:L/UI:N/VC:N/VI:H/VA:N/SC:L/SI:H/SA:N", 5.7),
        ("CVSS:4.0/AV:A/AC:L/AT:N/PR:L/UI:P/VC:N/VI:L/VA:N/SC:L/SI:H/SA:L", 4.4),
        ("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:H/VA:H/SC:H/SI:L/SA:L", 9.3),
        ("CVSS:4.0/AV:N/AC:H/AT:P/PR:H/UI:A/VC:N/VI:L/VA:L/SC:L/SI:H/SA:N", 4.3),
        ("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:H/VI:L/VA:H/SC:H/SI:N/SA:L", 8.2),
        ("CVSS:4.0/AV:P/AC:L/AT:N/PR:H/UI:N/VC:H/VI:N/VA:H/SC:H/SI:L/SA:N", 6.9),
        ("CVSS:4.0/AV:P/AC:L/AT:N/PR:L/UI:A/VC:H/VI:N/VA:H/SC:N/SI:L/SA:H", 6.9),
        ("CVSS:4.0/AV:P/AC:L/AT:P/PR:H/UI:P/VC:N/VI:N/VA:L/SC:L/SI:H/SA:N", 2.0),
        ("CVSS:4.0/AV:A/AC:L/AT:P/PR:H/UI:N/VC:L/VI:N/VA:L/SC:N/SI:H/SA:H", 4.8),
        ("CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:P/VC:H/VI:N/VA:L/SC:L/SI:N/SA:L/E:P/IR:M/AR:M/MAV:L/MVC:L/MSI:H", 1.0),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:N/VA:H/SC:L/SI:L/SA:L/CR:H/MSI:N", 7.0),
        ("CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:P/VC:L/VI:L/VA:N/SC:N/SI:N/SA:H/AR:L/MSI:S", 4.6),
        ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:N/VI:L/VA:L/SC:L/SI:N/SA:H/CR:L/IR:H/AR:M/MAV:N/MVC:L/MSI:S/MSA:L", 6.4),
        ("CVSS:4.0/AV:L/AC:H/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:H/SI:H/SA:L/E:A/IR:L/AR:H/MAV:P", 2.3),
        ("CVSS:4.0/AV:L/AC:H/AT:P/PR:L/UI:A/VC:H/VI:L/VA:L/SC:N/SI:H/SA:L/E:U/CR:M/IR:M/AR:M/MAV:A/MVC:N", 0.3),
        ("CVSS:4.0/AV:A/AC:L/AT:P/PR:L/UI:P/VC:N/VI:N/VA:L/SC:L/SI:L/SA:L/E:U/AR:H/MVC:L/MSI:H", 0.3),
        ("CVSS:4.0/AV:P/AC:L/AT:P/PR:L/UI:P/VC:H/VI:N/VA:N/SC:N/SI:N/SA:L/E:U/CR:L/MAV:P/MVC:L/MSA:S", 0.7),
        ("CVSS:4.0/AV:N/AC:H/AT:N/PR:N/UI:A/VC:H/VI:N/VA:H/SC:L/SI:N/SA:H/CR:L/MAV:P/MSI:L/MSA:H", 5.8),
        ("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:H/VA:L/SC:N/SI:H/SA:N/E:P/MSI:H", 6.8),
        ("CVSS:4.0/AV:N/AC:H/AT:N/PR:L/UI:A/VC:L/VI:N/VA:N/SC:H/SI:H/SA:N/CR:L/AR:M/MAV:N/MSI:S/MSA:H", 6.7),
        ("CVSS:4.0/AV:A/AC:H/AT:N/PR:L/UI:A/VC:N/VI:H/VA:N/SC:H/SI:L/SA:L/E:U/IR:H/AR:M/MAV:P/MSI:S/MSA:N", 3.0),
        ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:L/VA:N/SC:N/SI:H/SA:L/MAV:N/MSI:L", 6.0),
        ("CVSS:4.0/AV:L/AC:H/AT:P/PR:L/UI:N/VC:N/VI:N/VA:H/SC:H/SI:H/SA:N/CR:H", 7.0),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:A/VC:N/VI:N/VA:H/SC:L/SI:L/SA:N/E:A/CR:L/IR:H/MAV:P/MVC:L/MSI:N/MSA:H", 6.7),
        ("CVSS:4.0/AV:P/AC:L/AT:P/PR:N/UI:P/VC:L/VI:L/VA:N/SC:L/SI:L/SA:H/CR:M/IR:L/MAV:P/MVC:L", 2.1),
        ("CVSS:4.0/AV:L/AC:H/AT:N/PR:N/UI:N/VC:N/VI:L/VA:L/SC:H/SI:L/SA:H/CR:H/MVC:H/MSI:H", 7.3),
        ("CVSS:4.0/AV:P/AC:H/AT:P/PR:L/UI:N/VC:N/VI:L/VA:N/SC:N/SI:H/SA:N/IR:L/AR:L/MAV:N/MVC:N/MSI:N/MSA:H", 4.9),
        ("CVSS:4.0/AV:L/AC:H/AT:P/PR:L/UI:N/VC:N/VI:L/VA:L/SC:H/SI:N/SA:H/E:A/CR:L/MSA:N", 4.3),
        ("CVSS:4.0/AV:A/AC:L/AT:N/PR:L/UI:P/VC:L/VI:H/VA:L/SC:L/SI:H/SA:N/E:U/AR:M", 3.8),
        ] {
            assert_eq!(scored("CVSS_V4", vector), expected, "{vector}");
        }
    }

    #[test]
    fn invalid_vectors_are_reported() {
        for (kind, vector, needle) in [
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
                "A is missing",
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                "twice",
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                "invalid value",
            ),
            (
                "CVSS_V3",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                "prefix",
            ),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N",
                "SA is missing",
            ),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/ZZ:1",
                "unknown metric",
            ),
            ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P", "A is missing"),
            ("CVSS_V2", "garbage", "not METRIC:VALUE"),
        ] {
            match evaluate(kind, vector) {
                Err(e) => assert!(e.to_string().contains(needle), "{vector}: {e}"),
                other => panic!("{vector}: expected an error, got {other:?}"),
            }
        }
        assert_eq!(evaluate("Ubuntu", "high"), Ok(None));
        assert_eq!(score("CVSS_V3", ""), None);
    }
}
