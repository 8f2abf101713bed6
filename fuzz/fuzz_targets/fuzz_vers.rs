//! `vers:` range parsing and membership must never panic, and the canonical
//! form of a range must parse back to the same canonical form. The round
//! trip is checked for schemes with a total order only: Maven's and apk's
//! own orders are not transitive for some strings (see `recheck::versions`),
//! so sorting, and the validation that follows it, has no unique result there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recheck::formats::vers::VersRange;
use recheck::versions::Scheme;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The part after the first newline is a version to test for membership.
    let (range, probe) = text.split_once('\n').unwrap_or((text, "1.0.0"));
    let Ok(parsed) = VersRange::parse(range) else {
        return;
    };
    let _ = parsed.contains(probe);
    if matches!(parsed.scheme(), Some(Scheme::Maven | Scheme::Apk)) {
        return;
    }
    let canonical = parsed.to_string();
    match VersRange::parse(&canonical) {
        Ok(again) => assert_eq!(again.to_string(), canonical, "input {range:?}"),
        Err(e) => panic!("canonical form {canonical:?} of {range:?} does not parse: {e}"),
    }
});
