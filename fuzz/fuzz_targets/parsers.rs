#![no_main]
//! See `zgate::fuzzing::parsers`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::parsers(data));
