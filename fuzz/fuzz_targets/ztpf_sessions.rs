#![no_main]
//! See `zgate::fuzzing::ztpf_sessions`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::ztpf_sessions(data));
