//! Bytes ↔ frames and fields, with no protocol semantics.
//!
//! Today this holds the EBCDIC code page used by the host protocols and by the
//! PassTicket algorithms; the frame codec joins it with the host-protocol work.

pub mod ebcdic;
