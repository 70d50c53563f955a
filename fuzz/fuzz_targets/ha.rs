#![no_main]
//! See `zgate::fuzzing::ha`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::ha(data));
