#![no_main]
//! See `zgate::fuzzing::ds8k_mirror`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::ds8k_mirror(data));
