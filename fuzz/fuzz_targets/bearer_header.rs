//! Any `Authorization` header value: extracted, refused as malformed, or another scheme; never a
//! panic. The invariants are asserted inside `line_auth::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|value: &[u8]| {
    line_auth::fuzzing::bearer_header(value);
});
