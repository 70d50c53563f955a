#![no_main]
//! See `zgate::fuzzing::ztpf_system`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::ztpf_system(data));
