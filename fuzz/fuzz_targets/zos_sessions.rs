#![no_main]
//! z/OS client and host state machines under arbitrary operations: see `zgate::fuzzing::zos_sessions`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::zos_sessions(data));
