//! `Authorization` header values: each input is read as a described case (scheme, separator,
//! token, trailing whitespace) and must get exactly the answer its description calls for
//! (extracted token, another scheme, or the precise malformed reason); see `line_auth::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    line_auth::fuzzing::bearer_header(input);
});
