//! SPDY/3 header block compression: one zlib stream per direction for the whole
//! connection, primed with the protocol's dictionary, sync-flushed after each block.

use flate2_zlib::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::HEADER_DICTIONARY;
use super::SpdyError;

/// Largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// The compressing side (headers we send).
pub(crate) struct HeaderCompressor {
    z: Compress,
}

impl HeaderCompressor {
    pub(crate) fn new() -> Result<Self, SpdyError> {
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(&HEADER_DICTIONARY)
            .map_err(|e| SpdyError::Compression(e.to_string()))?;
        Ok(Self { z })
    }

    /// Compresses one header block and sync-flushes it.
    pub(crate) fn compress(&mut self, raw: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(raw.len() + 64);
        let start_in = self.z.total_in();
        loop {
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let consumed = (self.z.total_in() - start_in) as usize;
            self.z
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            let consumed = (self.z.total_in() - start_in) as usize;
            // Done once all input is in and the flush left spare output room.
            if consumed == raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The decompressing side (headers we receive).
pub(crate) struct HeaderDecompressor {
    z: Decompress,
}

impl HeaderDecompressor {
    pub(crate) fn new() -> Self {
        Self {
            z: Decompress::new(true),
        }
    }

    /// Decompresses one header block.
    pub(crate) fn decompress(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        let start_in = self.z.total_in();
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(SpdyError::Compression("header block too large".into()));
                }
                out.reserve(out.len().max(256));
            }
            let consumed = (self.z.total_in() - start_in) as usize;
            let before_out = out.len();
            match self
                .z
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => {
                    return Err(SpdyError::Compression(
                        "peer ended its header zlib stream".into(),
                    ))
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(&HEADER_DICTIONARY)
                        .map_err(|e| SpdyError::Compression(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(SpdyError::Compression(e.to_string())),
            }
            let now_consumed = (self.z.total_in() - start_in) as usize;
            let progressed = now_consumed != consumed || out.len() != before_out;
            if now_consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if !progressed && out.len() < out.capacity() {
                return Err(SpdyError::Compression("truncated header block".into()));
            }
        }
    }
}
