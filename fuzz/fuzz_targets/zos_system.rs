#![no_main]
//! See `zgate::fuzzing::zos_system`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::zos_system(data));
