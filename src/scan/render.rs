//! The output format of `recheck scan` (and of every command that must print
//! byte-identical findings, such as `recheck backfill`): JSON lines, sorted,
//! or a human table.

use std::io::{self, Write};

use crate::model::{Finding, FindingStatus};

/// One JSON object per finding per line, in the order given (callers pass
/// sorted findings).
pub fn write_json_lines<W: Write>(findings: &[Finding], mut out: W) -> io::Result<()> {
    for f in findings {
        serde_json::to_writer(&mut out, f)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A fixed-column table; suppressed findings show their VEX justification.
pub fn write_table<W: Write>(findings: &[Finding], mut out: W) -> io::Result<()> {
    let header = [
        "ARTIFACT",
        "ADVISORY",
        "VULNERABILITY",
        "PACKAGE",
        "VERSION",
        "SEVERITY",
        "STATUS",
    ];
    let rows: Vec<[String; 7]> = findings
        .iter()
        .map(|f| {
            let status = match f.status {
                FindingStatus::Affected => "affected".to_string(),
                FindingStatus::Suppressed => format!(
                    "suppressed ({})",
                    f.justification
                        .as_deref()
                        .or(f.vex_status.map(|s| s.as_str()))
                        .unwrap_or("vex")
                ),
            };
            [
                f.artifact.clone(),
                f.advisory.clone(),
                f.vulnerability.clone(),
                format!("{}/{}", f.ecosystem, f.package),
                f.version.clone(),
                f.severity.map(|s| s.as_str()).unwrap_or("-").to_string(),
                status,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header))?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    out.flush()
}
