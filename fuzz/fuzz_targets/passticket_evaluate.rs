#![no_main]
//! PassTicket generation, decoding and evaluation: see `zgate::fuzzing::passticket_evaluate`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zgate::fuzzing::passticket_evaluate(data));
