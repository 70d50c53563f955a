#![no_main]
//! See `zgate::fuzzing::hmc`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::hmc(data));
