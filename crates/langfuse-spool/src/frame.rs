//! Frames: `u32 LE length`, `u32 LE CRC-32 of the payload`, payload.

/// Bytes before the payload.
pub const HEADER_LEN: usize = 8;

/// Largest payload accepted when reading (a larger length is a torn or corrupt header).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// Appends one frame holding `payload` to `out`.
pub fn encode_into(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The result of reading one frame from the start of `buf`.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A verified payload and the total frame length.
    Frame(&'a [u8], usize),
    /// `buf` is empty: a clean end.
    End,
    /// A header or payload that is cut short, too large, or fails its checksum.
    Invalid,
}

/// Reads the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    if buf.is_empty() {
        return Decoded::End;
    }
    let Some((len, crc)) = header(buf) else {
        return Decoded::Invalid;
    };
    if len > MAX_PAYLOAD || buf.len() - HEADER_LEN < len {
        return Decoded::Invalid;
    }
    let payload = &buf[HEADER_LEN..HEADER_LEN + len];
    if crc32fast::hash(payload) != crc {
        return Decoded::Invalid;
    }
    Decoded::Frame(payload, HEADER_LEN + len)
}

/// `(payload length, checksum)` of a frame header, if `buf` holds a whole one.
pub fn header(buf: &[u8]) -> Option<(usize, u32)> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?);
    Some((usize::try_from(len).ok()?, crc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let mut buf = Vec::new();
        encode_into(b"hello", &mut buf);
        assert_eq!(decode(&buf), Decoded::Frame(b"hello", 13));
    }

    #[test]
    fn a_cut_or_flipped_frame_is_invalid() {
        let mut buf = Vec::new();
        encode_into(b"hello", &mut buf);
        for cut in 1..buf.len() {
            assert_eq!(decode(&buf[..cut]), Decoded::Invalid, "cut at {cut}");
        }
        buf[10] ^= 1;
        assert_eq!(decode(&buf), Decoded::Invalid);
        assert_eq!(decode(&[]), Decoded::End);
    }
}
