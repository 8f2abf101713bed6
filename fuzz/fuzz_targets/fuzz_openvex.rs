//! OpenVEX parser must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recheck::formats::openvex;
use recheck::model::Scope;

fuzz_target!(|data: &[u8]| {
    let _ = openvex::parse_vex("fuzz.json", data, Scope::Global);
});
