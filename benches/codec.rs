//! Frame decoding speed (issue 3 targets, measured, never asserted):
//! * heartbeat-size frames, cut by the codec *and* parsed into `ZosMessage`s: ≥ 10 M frames/s;
//! * 1 KiB and 16 KiB frames cut by the codec: ≥ 40 % of the bandwidth of a plain
//!   `memcpy` of the same bytes, measured in the same run (bodies are split off the
//!   read buffer, never copied).
//!
//! Run: `cargo bench --bench codec`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::Decoder;
use zgate::codec::frame::{Flags, Frame, FrameCodec, FrameHeader, ProtocolId, VERSION};
use zgate::proto::Control;
use zgate::proto::zos::ZosMessage;

const STREAM_BYTES: usize = 4 << 20;

fn stream_of(frame: &[u8]) -> Bytes {
    let n = STREAM_BYTES / frame.len();
    let mut b = BytesMut::with_capacity(n * frame.len());
    for _ in 0..n {
        b.extend_from_slice(frame);
    }
    b.freeze()
}

fn heartbeat_stream() -> (Bytes, u64) {
    let mut one = BytesMut::new();
    ZosMessage::control(7, Control::HeartbeatRequest { seq: 42 }).encode(&mut one);
    let s = stream_of(&one);
    let n = (s.len() / one.len()) as u64;
    (s, n)
}

fn sized_stream(body: usize) -> (Bytes, u64) {
    let frame = Frame {
        header: FrameHeader {
            version: VERSION,
            protocol: ProtocolId::DS8K,
            message_type: 1,
            flags: Flags::request(),
            correlation: 1,
        },
        body: Bytes::from(vec![0x5A; body]),
    };
    let mut one = BytesMut::new();
    frame.encode(&mut one);
    let s = stream_of(&one);
    let n = (s.len() / one.len()) as u64;
    (s, n)
}

fn heartbeats(c: &mut Criterion) {
    let (stream, n) = heartbeat_stream();
    let mut g = c.benchmark_group("decode_and_parse_heartbeats");
    g.throughput(Throughput::Elements(n));
    g.bench_function("zos_heartbeat_20B", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |mut buf| {
                let mut codec = FrameCodec::default();
                let mut count = 0u64;
                while let Some(frame) = codec.decode(&mut buf).unwrap() {
                    black_box(ZosMessage::decode(&frame).unwrap());
                    count += 1;
                }
                assert_eq!(count, n);
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bandwidth(c: &mut Criterion) {
    for body in [1024usize, 16 * 1024] {
        let (stream, n) = sized_stream(body);
        let mut g = c.benchmark_group(format!("frames_{}KiB", body / 1024));
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function("memcpy_same_bytes", |b| {
            let mut dst = vec![0u8; stream.len()];
            b.iter(|| {
                dst.copy_from_slice(black_box(&stream[..]));
                black_box(&dst);
            })
        });
        g.bench_function("codec_decode", |b| {
            b.iter_batched(
                || BytesMut::from(&stream[..]),
                |mut buf| {
                    let mut codec = FrameCodec::new(1 << 20);
                    let mut count = 0u64;
                    while let Some(frame) = codec.decode(&mut buf).unwrap() {
                        black_box(&frame.body);
                        count += 1;
                    }
                    assert_eq!(count, n);
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, heartbeats, bandwidth);
criterion_main!(benches);
