//! Byte framing of an NRI plugin connection.
//!
//! One unix stream carries a multiplexer: every frame is an 8-byte header (logical connection id,
//! payload length; both big-endian u32) followed by the payload. The payloads of one logical
//! connection, concatenated, form a ttrpc byte stream: messages with a 10-byte header (payload
//! length u32, stream id u32, message type u8, flags u8; big-endian) followed by the payload.

/// Logical connection on which the plugin serves the `Plugin` service (the runtime is the client).
pub const PLUGIN_SERVICE_CONN: u32 = 1;
/// Logical connection on which the runtime serves the `Runtime` service (the plugin is the client).
pub const RUNTIME_SERVICE_CONN: u32 = 2;

/// Length of a multiplexer frame header.
pub const MUX_HEADER_LEN: usize = 8;
/// Length of a ttrpc message header.
pub const TTRPC_HEADER_LEN: usize = 10;
/// Largest ttrpc message payload a peer accepts.
pub const TTRPC_MAX_MESSAGE: usize = 4 << 20;
/// Largest multiplexer payload we send: the Go side reads each frame into a 4 KiB buffer.
pub const MUX_CHUNK: usize = 4096;

/// ttrpc message type of a request.
pub const MESSAGE_REQUEST: u8 = 1;
/// ttrpc message type of a response.
pub const MESSAGE_RESPONSE: u8 = 2;

/// Header of one ttrpc message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Payload length (without the header).
    pub length: u32,
    /// Request stream the message belongs to (odd for client-initiated streams).
    pub stream_id: u32,
    /// Message type ([`MESSAGE_REQUEST`], [`MESSAGE_RESPONSE`], ...).
    pub kind: u8,
    /// Type-specific flags.
    pub flags: u8,
}

impl MessageHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; TTRPC_HEADER_LEN] {
        let mut b = [0u8; TTRPC_HEADER_LEN];
        b[0..4].copy_from_slice(&self.length.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8] = self.kind;
        b[9] = self.flags;
        b
    }

    /// Decodes a header from the first [`TTRPC_HEADER_LEN`] bytes of `b`.
    pub fn decode(b: &[u8; TTRPC_HEADER_LEN]) -> MessageHeader {
        MessageHeader {
            length: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            kind: b[8],
            flags: b[9],
        }
    }
}

/// Encodes one ttrpc message (header and payload) as multiplexer frames of logical connection
/// `conn`, appended to `out`. Frames carry at most [`MUX_CHUNK`] bytes.
pub fn encode_message(conn: u32, stream_id: u32, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let header = MessageHeader {
        length: payload.len() as u32,
        stream_id,
        kind,
        flags: 0,
    }
    .encode();
    let mut message = Vec::with_capacity(TTRPC_HEADER_LEN + payload.len());
    message.extend_from_slice(&header);
    message.extend_from_slice(payload);
    for chunk in message.chunks(MUX_CHUNK) {
        out.extend_from_slice(&conn.to_be_bytes());
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// A framing error: the peer sent something that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ttrpc message of {0} bytes exceeds the maximum of {TTRPC_MAX_MESSAGE}")]
pub struct Oversized(pub usize);

/// Reassembles the ttrpc messages of one logical connection from its multiplexer payloads.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
}

impl StreamDecoder {
    /// Appends the payload of one multiplexer frame.
    pub fn push(&mut self, payload: &[u8]) {
        self.buf.extend_from_slice(payload);
    }

    /// Takes the next complete message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<(MessageHeader, Vec<u8>)>, Oversized> {
        let Some(head) = self.buf.first_chunk::<TTRPC_HEADER_LEN>() else {
            return Ok(None);
        };
        let header = MessageHeader::decode(head);
        let len = header.length as usize;
        if len > TTRPC_MAX_MESSAGE {
            return Err(Oversized(len));
        }
        if self.buf.len() < TTRPC_HEADER_LEN + len {
            return Ok(None);
        }
        let payload = self.buf[TTRPC_HEADER_LEN..TTRPC_HEADER_LEN + len].to_vec();
        self.buf.drain(..TTRPC_HEADER_LEN + len);
        Ok(Some((header, payload)))
    }
}

/// Splits a multiplexer frame header into (connection id, payload length).
pub fn decode_mux_header(b: &[u8; MUX_HEADER_LEN]) -> (u32, usize) {
    (
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a byte stream of multiplexer frames into (conn, payload) pairs.
    fn frames(mut b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let head: &[u8; MUX_HEADER_LEN] = b.first_chunk().expect("frame header");
            let (conn, len) = decode_mux_header(head);
            out.push((conn, b[MUX_HEADER_LEN..MUX_HEADER_LEN + len].to_vec()));
            b = &b[MUX_HEADER_LEN + len..];
        }
        out
    }

    #[test]
    fn header_round_trip_is_big_endian() {
        let h = MessageHeader {
            length: 0x0102_0304,
            stream_id: 7,
            kind: MESSAGE_RESPONSE,
            flags: 4,
        };
        let b = h.encode();
        assert_eq!(b, [1, 2, 3, 4, 0, 0, 0, 7, 2, 4]);
        assert_eq!(MessageHeader::decode(&b), h);
    }

    #[test]
    fn small_message_is_one_frame() {
        let mut out = Vec::new();
        encode_message(PLUGIN_SERVICE_CONN, 3, MESSAGE_REQUEST, b"hello", &mut out);
        let f = frames(&out);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, PLUGIN_SERVICE_CONN);
        assert_eq!(&f[0].1[..TTRPC_HEADER_LEN], &[0, 0, 0, 5, 0, 0, 0, 3, 1, 0]);
        assert_eq!(&f[0].1[TTRPC_HEADER_LEN..], b"hello");
    }

    #[test]
    fn large_message_is_chunked_and_reassembled() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        encode_message(
            RUNTIME_SERVICE_CONN,
            1,
            MESSAGE_RESPONSE,
            &payload,
            &mut out,
        );
        let f = frames(&out);
        assert_eq!(f.len(), 3, "10010 bytes in 4096-byte chunks");
        assert!(f
            .iter()
            .all(|(c, p)| *c == RUNTIME_SERVICE_CONN && p.len() <= MUX_CHUNK));

        let mut d = StreamDecoder::default();
        for (i, (_, p)) in f.iter().enumerate() {
            let got = d.next_message().expect("decode");
            assert!(
                got.is_none(),
                "message complete too early, before frame {i}"
            );
            d.push(p);
        }
        let (h, p) = d.next_message().expect("decode").expect("complete");
        assert_eq!(h.stream_id, 1);
        assert_eq!(h.kind, MESSAGE_RESPONSE);
        assert_eq!(p, payload);
        assert_eq!(d.next_message().expect("decode"), None);
    }

    #[test]
    fn two_messages_in_one_push_and_split_header() {
        let mut out = Vec::new();
        encode_message(1, 1, MESSAGE_REQUEST, b"a", &mut out);
        encode_message(1, 3, MESSAGE_REQUEST, b"", &mut out);
        let stream: Vec<u8> = frames(&out).into_iter().flat_map(|(_, p)| p).collect();
        let mut d = StreamDecoder::default();
        d.push(&stream[..4]);
        assert_eq!(d.next_message().expect("decode"), None);
        d.push(&stream[4..]);
        let (h1, p1) = d.next_message().expect("decode").expect("first");
        let (h2, p2) = d.next_message().expect("decode").expect("second");
        assert_eq!((h1.stream_id, p1.as_slice()), (1, &b"a"[..]));
        assert_eq!((h2.stream_id, p2.len()), (3, 0));
    }

    #[test]
    fn oversized_message_is_rejected() {
        let h = MessageHeader {
            length: (TTRPC_MAX_MESSAGE + 1) as u32,
            stream_id: 1,
            kind: MESSAGE_REQUEST,
            flags: 0,
        };
        let mut d = StreamDecoder::default();
        d.push(&h.encode());
        assert_eq!(d.next_message(), Err(Oversized(TTRPC_MAX_MESSAGE + 1)));
    }
}
