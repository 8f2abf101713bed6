//! OSV parser (and the CVSS scorer it feeds) must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recheck::formats::{cvss, osv};

fuzz_target!(|data: &[u8]| {
    let _ = osv::parse_advisory("fuzz.json", data);
    // Raw vectors reach the scorer through OSV severity entries; feed it
    // arbitrary text directly too so it is explored beyond valid JSON.
    if let Ok(text) = std::str::from_utf8(data) {
        for kind in ["CVSS_V2", "CVSS_V3", "CVSS_V4"] {
            let _ = cvss::evaluate(kind, text);
        }
    }
});
