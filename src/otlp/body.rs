//! Request bodies before decoding: which encoding the content type names,
//! and decompression under a hard size cap.
//!
//! The cap applies to the decompressed size (OTLP/HTTP answers 413 past it).
//! Decompression streams into a buffer whose capacity never exceeds the cap,
//! so a small compressed "bomb" cannot make the server allocate more than the
//! configured limit.

use std::borrow::Cow;
use std::io::Read;

use super::{DecodeError, Encoding};

/// Reads the encoding from a `Content-Type` header value.
///
/// Accepts `application/x-protobuf`, `application/protobuf` and
/// `application/json`, with or without parameters such as `charset`;
/// anything else, or no header at all, is an unsupported media type.
pub fn parse_content_type(content_type: Option<&str>) -> Result<Encoding, DecodeError> {
    let Some(raw) = content_type else {
        return Err(DecodeError::UnsupportedMediaType(
            "missing Content-Type (expected application/x-protobuf or application/json)".into(),
        ));
    };
    let essence = raw.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-protobuf")
        || essence.eq_ignore_ascii_case("application/protobuf")
    {
        Ok(Encoding::Protobuf)
    } else if essence.eq_ignore_ascii_case("application/json") {
        Ok(Encoding::Json)
    } else {
        Err(DecodeError::UnsupportedMediaType(format!(
            "unsupported Content-Type {raw:?} (expected application/x-protobuf or application/json)"
        )))
    }
}

/// The compressions a body may arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Identity,
    Gzip,
    Deflate,
    Zstd,
}

fn parse_content_encoding(content_encoding: Option<&str>) -> Result<Compression, DecodeError> {
    let value = content_encoding.map(str::trim).unwrap_or("");
    if value.is_empty()
        || value.eq_ignore_ascii_case("identity")
        || value.eq_ignore_ascii_case("none")
    {
        Ok(Compression::Identity)
    } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
        Ok(Compression::Gzip)
    } else if value.eq_ignore_ascii_case("deflate") {
        Ok(Compression::Deflate)
    } else if value.eq_ignore_ascii_case("zstd") {
        Ok(Compression::Zstd)
    } else {
        Err(DecodeError::UnsupportedEncoding(format!(
            "unsupported Content-Encoding {value:?} (expected gzip, deflate, zstd or identity)"
        )))
    }
}

/// Decompresses `body` according to `Content-Encoding` (none/identity, gzip,
/// deflate, zstd), refusing with [`DecodeError::TooLarge`] as soon as the
/// result would exceed `max_bytes`.
pub fn decompress(
    body: &[u8],
    content_encoding: Option<&str>,
    max_bytes: usize,
) -> Result<Vec<u8>, DecodeError> {
    decompress_cow(body, content_encoding, max_bytes).map(Cow::into_owned)
}

/// [`decompress`] without copying an uncompressed body.
pub(crate) fn decompress_cow<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    max_bytes: usize,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    match parse_content_encoding(content_encoding)? {
        Compression::Identity => {
            if body.len() > max_bytes {
                return Err(DecodeError::TooLarge { limit: max_bytes });
            }
            Ok(Cow::Borrowed(body))
        }
        Compression::Gzip => {
            read_capped(flate2::read::MultiGzDecoder::new(body), "gzip", max_bytes).map(Cow::Owned)
        }
        Compression::Deflate => {
            // HTTP "deflate" is zlib-wrapped; some clients send raw deflate.
            match read_capped(flate2::read::ZlibDecoder::new(body), "deflate", max_bytes) {
                Err(DecodeError::Malformed(_)) => read_capped(
                    flate2::read::DeflateDecoder::new(body),
                    "deflate",
                    max_bytes,
                )
                .map(Cow::Owned),
                other => other.map(Cow::Owned),
            }
        }
        Compression::Zstd => decompress_zstd(body, max_bytes).map(Cow::Owned),
    }
}

/// Decodes every zstd frame of `body` in turn (concatenated frames are one
/// stream), under the same cap.
fn decompress_zstd(body: &[u8], max_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        // The decoder reserves the frame's window up front (up to 100 MB):
        // refuse windows far beyond the cap before it does.
        if zstd_window_size(rest).is_some_and(|w| w > (max_bytes as u64).max(ZSTD_WINDOW_FLOOR)) {
            return Err(DecodeError::TooLarge { limit: max_bytes });
        }
        let decoder = ruzstd::decoding::StreamingDecoder::new(&mut rest)
            .map_err(|e| DecodeError::Malformed(format!("invalid zstd body: {e}")))?;
        read_capped_into(decoder, "zstd", max_bytes, &mut out)?;
        if rest.is_empty() {
            return Ok(out);
        }
    }
}

/// Windows up to this size are allowed even under a smaller cap: common
/// encoders use up to 8 MiB whatever the content size.
const ZSTD_WINDOW_FLOOR: u64 = 8 * 1024 * 1024;

/// The window size a zstd frame header declares (RFC 8878 3.1.1.1), which is
/// what the decoder allocates; `None` when the header is incomplete.
fn zstd_window_size(body: &[u8]) -> Option<u64> {
    let descriptor = *body.get(4)?;
    if descriptor & 0x20 == 0 {
        // Not single-segment: an explicit window descriptor follows.
        let window = *body.get(5)?;
        let base = 1u64 << (10 + u64::from(window >> 3));
        return Some(base + (base / 8) * u64::from(window & 7));
    }
    // Single segment: the window is the frame content size.
    let dictionary_len = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
    let size_len = [1usize, 2, 4, 8][usize::from(descriptor >> 6)];
    let start = 5 + dictionary_len;
    let bytes = body.get(start..start + size_len)?;
    let size = bytes
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, b)| acc | (u64::from(*b) << (8 * i)));
    Some(if size_len == 2 { size + 256 } else { size })
}

/// Reads a decompressing reader to the end, growing the output buffer with a
/// capacity bounded by `max_bytes` and stopping at the first byte past it.
fn read_capped(reader: impl Read, what: &str, max_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    read_capped_into(reader, what, max_bytes, &mut out)?;
    Ok(out)
}

/// [`read_capped`] appending to `out` (whose length counts against the cap).
fn read_capped_into(
    mut reader: impl Read,
    what: &str,
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DecodeError::Malformed(format!("invalid {what} body: {e}"))),
        };
        let needed = out.len() + n;
        if needed > max_bytes {
            return Err(DecodeError::TooLarge { limit: max_bytes });
        }
        if needed > out.capacity() {
            let target = needed.max(out.capacity() * 2).max(64 * 1024).min(max_bytes);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn content_types() {
        assert!(matches!(
            parse_content_type(Some("application/x-protobuf")),
            Ok(Encoding::Protobuf)
        ));
        assert!(matches!(
            parse_content_type(Some("application/protobuf")),
            Ok(Encoding::Protobuf)
        ));
        assert!(matches!(
            parse_content_type(Some("Application/JSON; charset=utf-8")),
            Ok(Encoding::Json)
        ));
        assert!(matches!(
            parse_content_type(Some("text/plain")),
            Err(DecodeError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            parse_content_type(None),
            Err(DecodeError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn unknown_encoding_is_refused() {
        assert!(matches!(
            decompress(b"x", Some("br"), 100),
            Err(DecodeError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn identity_is_capped() {
        assert_eq!(decompress(b"abc", None, 3).unwrap(), b"abc");
        assert_eq!(decompress(b"abc", Some("identity"), 3).unwrap(), b"abc");
        assert!(matches!(
            decompress(b"abcd", None, 3),
            Err(DecodeError::TooLarge { limit: 3 })
        ));
    }

    #[test]
    fn gzip_and_deflate_round_trip() {
        let data = b"hello hello hello hello".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decompress(&gz, Some("gzip"), data.len()).unwrap(), data);
        assert!(matches!(
            decompress(&gz, Some("gzip"), data.len() - 1),
            Err(DecodeError::TooLarge { .. })
        ));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        assert_eq!(
            decompress(&z.finish().unwrap(), Some("deflate"), 1 << 20).unwrap(),
            data
        );
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&data).unwrap();
        assert_eq!(
            decompress(&raw.finish().unwrap(), Some("deflate"), 1 << 20).unwrap(),
            data
        );
    }

    #[test]
    fn garbage_gzip_is_malformed() {
        assert!(matches!(
            decompress(b"not gzip at all", Some("gzip"), 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decompress(b"not zstd at all", Some("zstd"), 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn zstd_raw_block_frame() {
        // A hand-built zstd frame: magic, frame header (single segment,
        // 1-byte content size = 5), one raw last block of 5 bytes.
        let frame = [
            0x28, 0xB5, 0x2F, 0xFD, // magic
            0x20, 0x05, // FHD: single segment, FCS=5
            0x29, 0x00, 0x00, // block header: last, raw, size 5
            b'h', b'e', b'l', b'l', b'o',
        ];
        assert_eq!(decompress(&frame, Some("zstd"), 100).unwrap(), b"hello");
        // With the content-checksum flag the 4 checksum bytes end the frame
        // and must be consumed before the next one starts.
        let mut checked = frame.to_vec();
        checked[4] = 0x24;
        checked.extend_from_slice(&[0, 0, 0, 0]);
        let both = [checked.as_slice(), frame.as_slice()].concat();
        assert_eq!(decompress(&both, Some("zstd"), 100).unwrap(), b"hellohello");
        let two = [frame, frame].concat();
        assert_eq!(decompress(&two, Some("zstd"), 100).unwrap(), b"hellohello");
        assert!(matches!(
            decompress(&two, Some("zstd"), 9),
            Err(DecodeError::TooLarge { limit: 9 })
        ));
        assert!(matches!(
            decompress(&frame, Some("zstd"), 4),
            Err(DecodeError::TooLarge { limit: 4 })
        ));
    }

    #[test]
    fn zstd_huge_window_is_refused_before_decoding() {
        // Frame header declaring a 64 MiB window (exponent 16), no blocks.
        let frame = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 16 << 3];
        assert_eq!(zstd_window_size(&frame), Some(64 << 20));
        assert!(matches!(
            decompress(&frame, Some("zstd"), 1 << 20),
            Err(DecodeError::TooLarge { .. })
        ));
        // Single segment with a 2-byte content size of 256 + 5.
        let frame = [0x28, 0xB5, 0x2F, 0xFD, 0x60, 0x05, 0x00];
        assert_eq!(zstd_window_size(&frame), Some(261));
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        // 50 MB of zeros compress to about 50 KB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..50 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 200_000);
        let cap = 1 << 20;
        assert!(matches!(
            decompress(&bomb, Some("gzip"), cap),
            Err(DecodeError::TooLarge { limit }) if limit == cap
        ));
        // The buffer never grows past the cap: reading through the same path
        // with a reader that reports how much it handed out.
        struct Counting<R>(R, usize);
        impl<R: Read> Read for Counting<R> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.read(buf)?;
                self.1 += n;
                Ok(n)
            }
        }
        let mut counting = Counting(flate2::read::GzDecoder::new(&bomb[..]), 0);
        assert!(read_capped(&mut counting, "gzip", cap).is_err());
        assert!(counting.1 <= cap + 16 * 1024);
    }
}
