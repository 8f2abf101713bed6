//! The SPDX parser, and the content sniffing in front of it, must never
//! panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recheck::formats::{self, spdx};
use recheck::model::Scope;

fuzz_target!(|data: &[u8]| {
    let _ = spdx::parse_sbom("fuzz.json", data, Scope::Global);
    let _ = formats::parse_sbom("fuzz.json", data, Scope::Global);
});
