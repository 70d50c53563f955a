#![no_main]
//! See `zgate::fuzzing::storage_link`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::storage_link(data));
