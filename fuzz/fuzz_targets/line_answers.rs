//! Answers from LINE's verify and profile endpoints: each input is read as a described case
//! (status, and a documented body, an error body or junk) and must get exactly the verdict its
//! description calls for (grant, refusal and its reason, missing scope, or unavailable and why);
//! see `line_auth::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    line_auth::fuzzing::line_answers(input);
});
