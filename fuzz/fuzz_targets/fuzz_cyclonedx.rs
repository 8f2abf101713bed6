//! The CycloneDX parser must never panic on any input, read as an SBOM or as
//! VEX (the VEX path adds ref resolution and `vers:` range expansion).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recheck::formats::cyclonedx;
use recheck::model::Scope;

fuzz_target!(|data: &[u8]| {
    let _ = cyclonedx::parse_sbom_with_warnings("fuzz.json", data, Scope::Global);
    let _ = cyclonedx::parse_vex_with_warnings("fuzz.json", data, Scope::Global);
});
