//! SPDY/3.1 frames as client-go's SPDY library (moby/spdystream) writes and reads them: the
//! 8-byte frame header, the control frames a port-forward session uses, DATA frames, and the
//! zlib-compressed name/value header blocks (one compression context per direction for the
//! whole session, primed with SPDY/3's dictionary, each block ended by a sync flush).
//!
//! Flow control (WINDOW_UPDATE) is parsed and ignored, as spdystream ignores it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1), byte for byte:
/// a peer's zlib checks its Adler-32 against the stream header.
const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

const VERSION: u16 = 3;
const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status: the sender no longer wants the stream (only the tests send it).
#[cfg(test)]
pub const RST_CANCEL: u32 = 5;

/// Header names and values, names lowercase as SPDY/3 requires.
pub type Headers = Vec<(String, String)>;

/// One SPDY frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// SETTINGS, with its (flags, id, value) entries.
    Settings(Vec<(u8, u32, u32)>),
    Ping(u32),
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
}

/// A session that can no longer be read: the peer broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SPDY protocol error: {0}")]
pub struct ProtocolError(pub String);

fn protocol_error(message: impl Into<String>) -> ProtocolError {
    ProtocolError(message.into())
}

/// Reads frames from the bytes of one direction of a session.
pub struct FrameDecoder {
    inflate: Decompress,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder {
            inflate: Decompress::new(true),
        }
    }
}

impl FrameDecoder {
    /// The next whole frame at the start of `buffer` (consumed), or `None` until more bytes
    /// arrive. Control frames of unknown types are skipped, as the spec asks.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        loop {
            if buffer.len() < 8 {
                return Ok(None);
            }
            let length = (usize::from(buffer[5]) << 16)
                | (usize::from(buffer[6]) << 8)
                | usize::from(buffer[7]);
            if buffer.len() < 8 + length {
                return Ok(None);
            }
            let mut head = buffer.split_to(8);
            let body = buffer.split_to(length).freeze();
            let first = head.get_u32();
            let flags = head.get_u8();
            if first & 0x8000_0000 == 0 {
                return Ok(Some(Frame::Data {
                    stream_id: first & 0x7fff_ffff,
                    fin: flags & FLAG_FIN != 0,
                    data: body,
                }));
            }
            let version = ((first >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(protocol_error(format!(
                    "unsupported SPDY version {version}"
                )));
            }
            if let Some(frame) = self.control(first as u16, flags, body)? {
                return Ok(Some(frame));
            }
        }
    }

    fn control(
        &mut self,
        kind: u16,
        flags: u8,
        mut body: Bytes,
    ) -> Result<Option<Frame>, ProtocolError> {
        let fin = flags & FLAG_FIN != 0;
        let need = |body: &Bytes, n: usize| need(kind, body, n);
        let frame = match kind {
            TYPE_SYN_STREAM => {
                need(&body, 10)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                let associated_to = body.get_u32() & 0x7fff_ffff;
                let priority = body.get_u8() >> 5;
                body.advance(1);
                let headers = self.headers(&body)?;
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    fin,
                    headers,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                need(&body, 4)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                let headers = self.headers(&body)?;
                if kind == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM | TYPE_GOAWAY | TYPE_WINDOW_UPDATE => two_word_frame(kind, body)?,
            TYPE_SETTINGS => settings_frame(body)?,
            TYPE_PING => {
                need(&body, 4)?;
                Frame::Ping(body.get_u32())
            }
            _ => return Ok(None),
        };
        Ok(Some(frame))
    }

    /// Inflates one header block (the session's zlib stream goes on across blocks) and parses
    /// its name/value pairs; a value with NUL bytes is several values of one name.
    fn headers(&mut self, block: &[u8]) -> Result<Headers, ProtocolError> {
        let plain = self.inflate_block(block)?;
        let mut plain = Bytes::from(plain);
        let short = || protocol_error("truncated header block");
        if plain.len() < 4 {
            return Err(short());
        }
        let count = plain.get_u32();
        let mut headers = Vec::new();
        for _ in 0..count {
            let name = take_string(&mut plain).ok_or_else(short)?;
            let value = take_string(&mut plain).ok_or_else(short)?;
            let name = name.to_ascii_lowercase();
            for part in value.split('\0') {
                headers.push((name.clone(), part.to_string()));
            }
        }
        Ok(headers)
    }

    fn inflate_block(&mut self, block: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let inflate = &mut self.inflate;
        run_zlib(block, |input, out| {
            let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
            let result = inflate.decompress_vec(input, out, FlushDecompress::Sync);
            let step = Step {
                consumed: (inflate.total_in() - before_in) as usize,
                produced: (inflate.total_out() - before_out) as usize,
                ended: matches!(result, Ok(Status::StreamEnd)),
            };
            match result {
                Ok(_) => Ok(step),
                // The stream's header names the dictionary; inflating goes on with it.
                Err(error) if error.needs_dictionary().is_some() => {
                    inflate
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| protocol_error(format!("header dictionary: {e}")))?;
                    Ok(Step {
                        produced: 0,
                        ..step
                    })
                }
                Err(error) => Err(protocol_error(format!("header block: {error}"))),
            }
        })
    }
}

/// What one call into zlib did.
struct Step {
    consumed: usize,
    produced: usize,
    ended: bool,
}

/// Feeds all of `input` through a zlib stream (`step` is one call into it) until the output
/// stops filling the room it is given: everything the sync flush makes is then out.
fn run_zlib(
    mut input: &[u8],
    mut step: impl FnMut(&[u8], &mut Vec<u8>) -> Result<Step, ProtocolError>,
) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(input.len() * 2 + 256);
    loop {
        if out.capacity() - out.len() < 256 {
            out.reserve(4096);
        }
        let spare = out.capacity() - out.len();
        let done = step(input, &mut out)?;
        input = &input[done.consumed..];
        if done.ended || (input.is_empty() && done.produced < spare) {
            return Ok(out);
        }
        if done.consumed == 0 && done.produced == 0 && !input.is_empty() {
            return Err(protocol_error("the zlib stream makes no progress"));
        }
    }
}

fn take_string(bytes: &mut Bytes) -> Option<String> {
    if bytes.len() < 4 {
        return None;
    }
    let length = bytes.get_u32() as usize;
    if bytes.len() < length {
        return None;
    }
    let text = bytes.split_to(length);
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// Writes frames for one direction of a session.
pub struct FrameEncoder {
    deflate: Compress,
}

impl Default for FrameEncoder {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::best(), true);
        // Before the first byte: the stream header then names the dictionary (FDICT).
        deflate
            .set_dictionary(DICTIONARY)
            .expect("a fresh zlib stream takes a dictionary");
        FrameEncoder { deflate }
    }
}

impl FrameEncoder {
    /// Appends `frame` to `out`. DATA payloads longer than a frame can hold (the 24-bit
    /// length field says at most 2^24 - 1 bytes) must be split by the caller.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) {
        match frame {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                fin,
                headers,
            } => {
                let mut body = BytesMut::new();
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(associated_to & 0x7fff_ffff);
                body.put_u8((priority & 0x07) << 5);
                body.put_u8(0);
                body.extend_from_slice(&self.header_block(headers));
                control(out, TYPE_SYN_STREAM, fin_flag(*fin), &body);
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    TYPE_SYN_REPLY
                } else {
                    TYPE_HEADERS
                };
                let mut body = BytesMut::new();
                body.put_u32(stream_id & 0x7fff_ffff);
                body.extend_from_slice(&self.header_block(headers));
                control(out, kind, fin_flag(*fin), &body);
            }
            Frame::RstStream { stream_id, status } => {
                control(out, TYPE_RST_STREAM, 0, &words(&[*stream_id, *status]));
            }
            Frame::Settings(entries) => {
                let mut body = BytesMut::new();
                body.put_u32(entries.len() as u32);
                for (flags, id, value) in entries {
                    body.put_u32((u32::from(*flags) << 24) | (id & 0x00ff_ffff));
                    body.put_u32(*value);
                }
                control(out, TYPE_SETTINGS, 0, &body);
            }
            Frame::Ping(id) => control(out, TYPE_PING, 0, &words(&[*id])),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => control(
                out,
                TYPE_GOAWAY,
                0,
                &words(&[*last_good_stream_id, *status]),
            ),
            Frame::WindowUpdate { stream_id, delta } => {
                control(out, TYPE_WINDOW_UPDATE, 0, &words(&[*stream_id, *delta]));
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32((u32::from(fin_flag(*fin)) << 24) | data.len() as u32);
                out.extend_from_slice(data);
            }
        }
    }

    /// The name/value block, compressed and sync-flushed so the peer can inflate all of it.
    fn header_block(&mut self, headers: &Headers) -> Vec<u8> {
        // One entry per name: the values of a repeated name are joined by NUL bytes
        // (spdystream refuses a block that names a header twice).
        let mut joined: Vec<(String, String)> = Vec::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            match joined.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => {
                    values.push('\0');
                    values.push_str(value);
                }
                None => joined.push((name, value.clone())),
            }
        }
        let mut plain = BytesMut::new();
        plain.put_u32(joined.len() as u32);
        for (name, value) in &joined {
            plain.put_u32(name.len() as u32);
            plain.extend_from_slice(name.as_bytes());
            plain.put_u32(value.len() as u32);
            plain.extend_from_slice(value.as_bytes());
        }
        let deflate = &mut self.deflate;
        let compressed = run_zlib(&plain, |input, out| {
            let (before_in, before_out) = (deflate.total_in(), deflate.total_out());
            // Compressing into memory cannot fail: zlib only reports a full output buffer.
            let _ = deflate.compress_vec(input, out, FlushCompress::Sync);
            Ok(Step {
                consumed: (deflate.total_in() - before_in) as usize,
                produced: (deflate.total_out() - before_out) as usize,
                ended: false,
            })
        });
        compressed.unwrap_or_default()
    }
}

fn fin_flag(fin: bool) -> u8 {
    if fin { FLAG_FIN } else { 0 }
}

fn words(values: &[u32]) -> BytesMut {
    let mut body = BytesMut::with_capacity(values.len() * 4);
    for value in values {
        body.put_u32(*value);
    }
    body
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, body: &[u8]) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | body.len() as u32);
    out.extend_from_slice(body);
}

/// Fails unless the body of a control frame of type `kind` has at least `n` bytes.
fn need(kind: u16, body: &Bytes, n: usize) -> Result<(), ProtocolError> {
    if body.len() < n {
        Err(protocol_error(format!("control frame {kind} too short")))
    } else {
        Ok(())
    }
}

/// The three frames of two words: a stream id (31 bits) and a status or size.
fn two_word_frame(kind: u16, mut body: Bytes) -> Result<Frame, ProtocolError> {
    need(kind, &body, 8)?;
    let stream_id = body.get_u32() & 0x7fff_ffff;
    let value = body.get_u32();
    Ok(match kind {
        TYPE_RST_STREAM => Frame::RstStream {
            stream_id,
            status: value,
        },
        TYPE_GOAWAY => Frame::GoAway {
            last_good_stream_id: stream_id,
            status: value,
        },
        _ => Frame::WindowUpdate {
            stream_id,
            delta: value & 0x7fff_ffff,
        },
    })
}

/// SETTINGS: a count, then per entry a word of flags (8 bits) and id (24 bits) and a value.
fn settings_frame(mut body: Bytes) -> Result<Frame, ProtocolError> {
    need(TYPE_SETTINGS, &body, 4)?;
    let count = body.get_u32() as usize;
    need(TYPE_SETTINGS, &body, count.saturating_mul(8))?;
    let entries = (0..count)
        .map(|_| {
            let word = body.get_u32();
            ((word >> 24) as u8, word & 0x00ff_ffff, body.get_u32())
        })
        .collect();
    Ok(Frame::Settings(entries))
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
