#![no_main]
//! See `zgate::fuzzing::engine::engine_ops`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::engine::engine_ops(data));
