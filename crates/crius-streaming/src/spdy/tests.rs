//! Tests of SPDY framing, header compression and the connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::frame::{
    decode_header_block, encode_header_block, rst, Decoder, Encoder, Frame, Setting, FLAG_FIN,
};
use super::Connection;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn sorted(mut h: Vec<(String, String)>) -> Vec<(String, String)> {
    h.sort();
    h
}

// Frames written by the Go SPDY framer (github.com/moby/spdystream/spdy v0.5.1, the one
// kubectl and crictl use), in this order on one connection.
const GO_SYN1: &str = "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff";
const GO_SYN3: &str =
    "80030001010000260000000300000000400002651c0c29b6e292947c7019cd52905f04a62d0c2c0c00000000ffff";
const GO_DATA: &str = "00000003010000026869";
const GO_PING: &str = "800300060000000400000007";
const GO_WINDOW_UPDATE: &str = "80030009000000080000000500010000";
const GO_RST: &str = "80030003000000080000000900000005";
const GO_GOAWAY: &str = "80030007000000080000000b00000000";
const GO_SETTINGS: &str = "800300040000000c000000010000000700100000";

#[test]
fn decodes_frames_written_by_go_spdystream() {
    let mut dec = Decoder::new();
    let syn1 = unhex(GO_SYN1);
    let (frame, used) = dec.decode(&syn1).unwrap().unwrap();
    assert_eq!(used, syn1.len());
    assert_eq!(
        frame,
        Frame::SynStream {
            stream_id: 1,
            associated_id: 0,
            priority: 0,
            flags: 0,
            headers: vec![("streamtype".into(), "error".into())],
        }
    );
    // The second header block continues the same zlib stream.
    let syn3 = unhex(GO_SYN3);
    let Frame::SynStream {
        stream_id,
        priority,
        flags,
        headers,
        ..
    } = dec.decode(&syn3).unwrap().unwrap().0
    else {
        panic!("not a SYN_STREAM");
    };
    assert_eq!((stream_id, priority, flags), (3, 2, FLAG_FIN));
    assert_eq!(
        sorted(headers),
        vec![
            ("port".to_string(), "8080".to_string()),
            ("streamtype".to_string(), "stdout".to_string())
        ]
    );
}

#[test]
fn uncompressed_frames_match_go_bytes_both_ways() {
    let cases = [
        (
            GO_DATA,
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: b"hi".to_vec(),
            },
        ),
        (GO_PING, Frame::Ping { id: 7 }),
        (
            GO_WINDOW_UPDATE,
            Frame::WindowUpdate {
                stream_id: 5,
                delta: 65536,
            },
        ),
        (
            GO_RST,
            Frame::RstStream {
                stream_id: 9,
                status: rst::CANCEL,
            },
        ),
        (
            GO_GOAWAY,
            Frame::GoAway {
                last_good_stream_id: 11,
                status: 0,
            },
        ),
        (
            GO_SETTINGS,
            Frame::Settings {
                flags: 0,
                entries: vec![Setting {
                    flags: 0,
                    id: 7,
                    value: 1 << 20,
                }],
            },
        ),
    ];
    for (wire, frame) in cases {
        let bytes = unhex(wire);
        let mut dec = Decoder::new();
        assert_eq!(
            dec.decode(&bytes).unwrap(),
            Some((frame.clone(), bytes.len()))
        );
        let mut out = Vec::new();
        Encoder::new().unwrap().encode(&frame, &mut out).unwrap();
        assert_eq!(hex::encode(&out), wire);
        // A truncated frame is not decoded yet.
        assert_eq!(dec.decode(&bytes[..bytes.len() - 1]).unwrap(), None);
    }
}

#[test]
fn header_blocks_round_trip_through_shared_zlib_streams() {
    let mut enc = Encoder::new().unwrap();
    let mut dec = Decoder::new();
    let mut wire = Vec::new();
    let blocks: Vec<Vec<(String, String)>> = vec![
        vec![("streamtype".into(), "stdin".into())],
        vec![],
        vec![
            (
                "x-stream-protocol-version".into(),
                "v4.channel.k8s.io".into(),
            ),
            ("value".into(), "a\0b".into()),
            ("big".into(), "x".repeat(70_000)),
        ],
    ];
    for (i, headers) in blocks.iter().enumerate() {
        let frame = Frame::SynReply {
            stream_id: 2 * i as u32 + 1,
            flags: 0,
            headers: headers.clone(),
        };
        enc.encode(&frame, &mut wire).unwrap();
    }
    // The first block's zlib header names the SPDY dictionary (Adler-32 0xe3c6a7c2, the
    // same id the Go framer writes above).
    assert_eq!(&wire[12..18], &unhex("78f9e3c6a7c2")[..]);
    let mut pos = 0;
    for (i, headers) in blocks.iter().enumerate() {
        let (frame, used) = dec.decode(&wire[pos..]).unwrap().unwrap();
        pos += used;
        assert_eq!(
            frame,
            Frame::SynReply {
                stream_id: 2 * i as u32 + 1,
                flags: 0,
                headers: headers.clone(),
            }
        );
    }
    assert_eq!(pos, wire.len());
}

#[test]
fn raw_header_block_layout() {
    let headers = vec![("Port".to_string(), "80".to_string())];
    let raw = encode_header_block(&headers);
    assert_eq!(hex::encode(&raw), "0000000100000004706f7274000000023830");
    assert_eq!(
        decode_header_block(&raw).unwrap(),
        vec![("port".into(), "80".into())]
    );
    assert!(decode_header_block(&raw[..raw.len() - 1]).is_err());
}

/// The client end of a test connection: frames in and out by hand.
struct Peer {
    io: DuplexStream,
    enc: Encoder,
    dec: Decoder,
    buf: Vec<u8>,
}

impl Peer {
    async fn send(&mut self, frame: Frame) {
        let mut out = Vec::new();
        self.enc.encode(&frame, &mut out).unwrap();
        self.io.write_all(&out).await.unwrap();
    }

    async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = self.dec.decode(&self.buf).unwrap() {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.unwrap();
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Next frame that is not a WINDOW_UPDATE.
    async fn recv_skip_updates(&mut self) -> Option<Frame> {
        loop {
            match self.recv().await? {
                Frame::WindowUpdate { .. } => continue,
                f => return Some(f),
            }
        }
    }
}

fn pair() -> (Connection, Peer) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let conn = Connection::start(a).unwrap();
    let peer = Peer {
        io: b,
        enc: Encoder::new().unwrap(),
        dec: Decoder::new(),
        buf: Vec::new(),
    };
    (conn, peer)
}

fn syn(id: u32, stream_type: &str) -> Frame {
    Frame::SynStream {
        stream_id: id,
        associated_id: 0,
        priority: 0,
        flags: 0,
        headers: vec![("streamtype".into(), stream_type.into())],
    }
}

#[tokio::test]
async fn connection_accepts_streams_routes_data_and_echoes_pings() {
    let (mut conn, mut peer) = pair();
    peer.send(syn(1, "stdin")).await;
    assert_eq!(
        peer.recv().await,
        Some(Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: vec![]
        })
    );
    let mut stream = conn.incoming.recv().await.unwrap();
    assert_eq!(super::header(&stream.headers, "streamType"), Some("stdin"));
    peer.send(Frame::Data {
        stream_id: 1,
        flags: FLAG_FIN,
        data: b"hello".to_vec(),
    })
    .await;
    assert_eq!(stream.recv.recv().await.as_deref(), Some(&b"hello"[..]));
    assert_eq!(stream.recv.recv().await, None, "FIN ends the inbound side");
    stream.send.send(b"out").await.unwrap();
    stream.send.finish().await.unwrap();
    peer.send(Frame::Ping { id: 5 }).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(peer.recv_skip_updates().await.unwrap());
    }
    assert!(seen.contains(&Frame::Ping { id: 5 }));
    let data: Vec<_> = seen
        .into_iter()
        .filter(|f| matches!(f, Frame::Data { .. }))
        .collect();
    assert_eq!(
        data,
        vec![
            Frame::Data {
                stream_id: 1,
                flags: 0,
                data: b"out".to_vec()
            },
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: vec![]
            },
        ]
    );
    // Stream ids must be odd and increasing.
    peer.send(syn(1, "stdout")).await;
    assert_eq!(
        peer.recv_skip_updates().await,
        Some(Frame::RstStream {
            stream_id: 1,
            status: rst::PROTOCOL_ERROR
        })
    );
    drop(peer);
    conn.close(std::time::Duration::from_secs(30)).await;
}

#[tokio::test]
async fn sender_respects_window_once_peer_does_flow_control() {
    let (mut conn, mut peer) = pair();
    peer.send(Frame::Settings {
        flags: 0,
        entries: vec![Setting {
            flags: 0,
            id: 7,
            value: 10,
        }],
    })
    .await;
    peer.send(syn(1, "stdout")).await;
    let mut stream = conn.incoming.recv().await.unwrap();
    let sender = tokio::spawn(async move {
        stream.send.send(&[7u8; 25]).await.unwrap();
        stream.send.finish().await.unwrap();
    });
    assert!(matches!(peer.recv().await, Some(Frame::SynReply { .. })));
    let first = peer.recv().await.unwrap();
    assert_eq!(
        first,
        Frame::Data {
            stream_id: 1,
            flags: 0,
            data: vec![7; 10]
        }
    );
    // Nothing more until the window opens: the next frame is the one after our update.
    peer.send(Frame::WindowUpdate {
        stream_id: 1,
        delta: 100,
    })
    .await;
    assert_eq!(
        peer.recv().await,
        Some(Frame::Data {
            stream_id: 1,
            flags: 0,
            data: vec![7; 15]
        })
    );
    sender.await.unwrap();
    assert!(matches!(
        peer.recv().await,
        Some(Frame::Data {
            flags: FLAG_FIN,
            ..
        })
    ));
}

#[tokio::test]
async fn peer_hangup_marks_connection_gone_and_ends_streams() {
    let (mut conn, mut peer) = pair();
    peer.send(syn(1, "stdin")).await;
    let mut stream = conn.incoming.recv().await.unwrap();
    drop(peer);
    let mut gone = conn.gone.clone();
    gone.wait_for(|g| *g).await.unwrap();
    assert_eq!(stream.recv.recv().await, None);
    assert!(stream.send.send(b"x").await.is_err());
}

#[test]
fn decoder_rejects_or_waits_on_garbage_without_panicking() {
    // A small xorshift generator: deterministic pseudo-random input.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..5000 {
        let len = (next() % 96) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && buf.len() >= 8 {
            // Make it look like a SPDY/3 control frame of a real type with a fitting length.
            buf[0] = 0x80;
            buf[1] = 3;
            buf[2] = 0;
            buf[3] = (next() % 10) as u8;
            let payload = (buf.len() - 8) as u32;
            buf[5..8].copy_from_slice(&payload.to_be_bytes()[1..]);
        }
        let mut dec = Decoder::new();
        if let Ok(Some((_, used))) = dec.decode(&buf) {
            assert!(used <= buf.len());
        }
    }
}
