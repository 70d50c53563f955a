#![no_main]
//! See `zgate::fuzzing::ds8k_sessions`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::ds8k_sessions(data));
