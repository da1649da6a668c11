//! SPDY/3.1 frames: the wire layout of data and control frames and of header blocks.

use super::zlib::{HeaderCompressor, HeaderDecompressor};
use super::SpdyError;

/// The protocol version carried by control frames.
pub(crate) const VERSION: u16 = 3;
/// Flag FIN on data and on SYN_STREAM/SYN_REPLY/HEADERS frames.
pub(crate) const FLAG_FIN: u8 = 0x01;
/// Flag UNIDIRECTIONAL on SYN_STREAM.
#[allow(dead_code)]
pub(crate) const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// Largest frame payload accepted (the length field has 24 bits).
pub(crate) const MAX_FRAME_LEN: usize = (1 << 24) - 1;
/// SETTINGS id of the initial stream window size.
pub(crate) const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

/// RST_STREAM status codes used here.
pub(crate) mod rst {
    /// PROTOCOL_ERROR.
    pub(crate) const PROTOCOL_ERROR: u32 = 1;
    /// INVALID_STREAM.
    pub(crate) const INVALID_STREAM: u32 = 2;
    /// REFUSED_STREAM.
    pub(crate) const REFUSED_STREAM: u32 = 3;
    /// CANCEL.
    #[allow(dead_code)]
    pub(crate) const CANCEL: u32 = 5;
    /// FLOW_CONTROL_ERROR.
    pub(crate) const FLOW_CONTROL_ERROR: u32 = 7;
}

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// A header block: lower-case names with values (several values joined by NUL).
pub(crate) type Headers = Vec<(String, String)>;

/// Looks up a header by (lower-case) name.
pub(crate) fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One SETTINGS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

/// A decoded SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Data {
        stream_id: u32,
        flags: u8,
        data: Vec<u8>,
    },
    SynStream {
        stream_id: u32,
        associated_id: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    /// A control frame of a type this implementation ignores (e.g. CREDENTIAL, NOOP).
    Unknown {
        frame_type: u16,
    },
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn need(payload: &[u8], n: usize, what: &str) -> Result<(), SpdyError> {
    if payload.len() < n {
        return Err(SpdyError::Protocol(format!("{what} frame too short")));
    }
    Ok(())
}

/// Serialises a raw (uncompressed) header block.
pub(crate) fn encode_header_block(headers: &Headers) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Parses a raw (decompressed) header block.
pub(crate) fn decode_header_block(raw: &[u8]) -> Result<Headers, SpdyError> {
    let bad = |what: &str| SpdyError::Protocol(format!("header block: {what}"));
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], SpdyError> {
        let end = pos.checked_add(n).filter(|e| *e <= raw.len());
        let end = end.ok_or_else(|| bad("truncated"))?;
        let s = &raw[pos..end];
        pos = end;
        Ok(s)
    };
    let count = be32(take(4)?) as usize;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = be32(take(4)?) as usize;
        let name = String::from_utf8(take(n)?.to_vec()).map_err(|_| bad("name not UTF-8"))?;
        let n = be32(take(4)?) as usize;
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

/// Encodes the frames one side of a connection sends; owns that direction's zlib stream.
pub(crate) struct Encoder {
    compressor: HeaderCompressor,
}

impl Encoder {
    pub(crate) fn new() -> Result<Self, SpdyError> {
        Ok(Self {
            compressor: HeaderCompressor::new()?,
        })
    }

    /// Appends the wire form of `frame` to `out`.
    pub(crate) fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        let (frame_type, flags, payload) = match frame {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if data.len() > MAX_FRAME_LEN {
                    return Err(SpdyError::Protocol("data frame too large".into()));
                }
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                push_flags_len(out, *flags, data.len());
                out.extend_from_slice(data);
                return Ok(());
            }
            Frame::SynStream {
                stream_id,
                associated_id,
                priority,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&(associated_id & 0x7fff_ffff).to_be_bytes());
                p.push((priority & 0x07) << 5);
                p.push(0); // slot
                let block = self.compressor.compress(&encode_header_block(headers))?;
                p.extend_from_slice(&block);
                (TYPE_SYN_STREAM, *flags, p)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                let block = self.compressor.compress(&encode_header_block(headers))?;
                p.extend_from_slice(&block);
                (TYPE_SYN_REPLY, *flags, p)
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                let block = self.compressor.compress(&encode_header_block(headers))?;
                p.extend_from_slice(&block);
                (TYPE_HEADERS, *flags, p)
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                (TYPE_RST_STREAM, 0, p)
            }
            Frame::Settings { flags, entries } => {
                let mut p = (entries.len() as u32).to_be_bytes().to_vec();
                for e in entries {
                    p.push(e.flags);
                    p.extend_from_slice(&e.id.to_be_bytes()[1..]);
                    p.extend_from_slice(&e.value.to_be_bytes());
                }
                (TYPE_SETTINGS, *flags, p)
            }
            Frame::Ping { id } => (TYPE_PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut p = (last_good_stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                (TYPE_GOAWAY, 0, p)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
                (TYPE_WINDOW_UPDATE, 0, p)
            }
            Frame::Unknown { frame_type } => {
                return Err(SpdyError::Protocol(format!(
                    "cannot encode frame type {frame_type}"
                )))
            }
        };
        if payload.len() > MAX_FRAME_LEN {
            return Err(SpdyError::Protocol("control frame too large".into()));
        }
        out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        out.extend_from_slice(&frame_type.to_be_bytes());
        push_flags_len(out, flags, payload.len());
        out.extend_from_slice(&payload);
        Ok(())
    }
}

/// Decodes the frames one side of a connection receives; owns that direction's zlib stream.
pub(crate) struct Decoder {
    decompressor: HeaderDecompressor,
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Self {
            decompressor: HeaderDecompressor::new(),
        }
    }

    /// Decodes one frame from the front of `buf`; returns it with the bytes it used, or
    /// `None` when `buf` does not hold a whole frame yet.
    pub(crate) fn decode(&mut self, buf: &[u8]) -> Result<Option<(Frame, usize)>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let flags = buf[4];
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let payload = &buf[8..8 + len];
        let used = 8 + len;
        if buf[0] & 0x80 == 0 {
            let stream_id = be32(buf) & 0x7fff_ffff;
            let frame = Frame::Data {
                stream_id,
                flags,
                data: payload.to_vec(),
            };
            return Ok(Some((frame, used)));
        }
        let version = u16::from_be_bytes([buf[0], buf[1]]) & 0x7fff;
        if version != VERSION {
            return Err(SpdyError::Protocol(format!(
                "unsupported SPDY version {version}"
            )));
        }
        let frame_type = u16::from_be_bytes([buf[2], buf[3]]);
        let frame = match frame_type {
            TYPE_SYN_STREAM => {
                need(payload, 10, "SYN_STREAM")?;
                let raw = self.decompressor.decompress(&payload[10..])?;
                Frame::SynStream {
                    stream_id: be32(payload) & 0x7fff_ffff,
                    associated_id: be32(&payload[4..]) & 0x7fff_ffff,
                    priority: payload[8] >> 5,
                    flags,
                    headers: decode_header_block(&raw)?,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                need(payload, 4, "SYN_REPLY/HEADERS")?;
                let raw = self.decompressor.decompress(&payload[4..])?;
                let stream_id = be32(payload) & 0x7fff_ffff;
                let headers = decode_header_block(&raw)?;
                if frame_type == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM => {
                need(payload, 8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: be32(payload) & 0x7fff_ffff,
                    status: be32(&payload[4..]),
                }
            }
            TYPE_SETTINGS => {
                need(payload, 4, "SETTINGS")?;
                let n = be32(payload) as usize;
                let body = &payload[4..];
                if n.checked_mul(8) != Some(body.len()) {
                    return Err(SpdyError::Protocol("SETTINGS length mismatch".into()));
                }
                let entries = body
                    .chunks_exact(8)
                    .map(|e| Setting {
                        flags: e[0],
                        id: u32::from_be_bytes([0, e[1], e[2], e[3]]),
                        value: be32(&e[4..]),
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            TYPE_PING => {
                need(payload, 4, "PING")?;
                Frame::Ping { id: be32(payload) }
            }
            TYPE_GOAWAY => {
                need(payload, 8, "GOAWAY")?;
                Frame::GoAway {
                    last_good_stream_id: be32(payload) & 0x7fff_ffff,
                    status: be32(&payload[4..]),
                }
            }
            TYPE_WINDOW_UPDATE => {
                need(payload, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: be32(payload) & 0x7fff_ffff,
                    delta: be32(&payload[4..]) & 0x7fff_ffff,
                }
            }
            other => Frame::Unknown { frame_type: other },
        };
        Ok(Some((frame, used)))
    }
}

fn push_flags_len(out: &mut Vec<u8>, flags: u8, len: usize) {
    let len = (len as u32).to_be_bytes();
    out.push(flags);
    out.extend_from_slice(&len[1..]);
}
