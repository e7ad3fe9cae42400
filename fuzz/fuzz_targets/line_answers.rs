//! Any status and body from LINE's verify and profile endpoints: a verdict or "unavailable";
//! never a panic. The invariants are asserted inside `line_auth::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let [high, low, body @ ..] = input {
        line_auth::fuzzing::line_answers(u16::from_be_bytes([*high, *low]), body);
    }
});
