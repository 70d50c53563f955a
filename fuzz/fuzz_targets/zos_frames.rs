#![no_main]
//! Frame codec + z/OS decoder on a fragmented stream: see `zgate::fuzzing::zos_frames`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::zos_frames(data));
