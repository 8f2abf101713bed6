//! Purl parsing must never panic, and the canonical form must be a fixed
//! point: parsing it again yields the same canonical string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recheck::formats::purl::Purl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(purl) = Purl::parse(text) else {
        return;
    };
    let canonical = purl.canonical();
    let again = match Purl::parse(&canonical) {
        Ok(p) => p,
        Err(e) => panic!("canonical form {canonical:?} of {text:?} does not parse: {e}"),
    };
    assert_eq!(again.canonical(), canonical, "input {text:?}");
    let _ = (purl.ecosystem(), purl.package_name(), purl.match_version());
});
