//! The canonical binary encoding used for content hashes, associated data and sealed
//! payloads.
//!
//! It is deliberately simple so that any implementation (a future export tool, an auditor's
//! script) can reproduce a hash byte for byte:
//!
//! - every encoding starts with a **domain tag**, a string encoded like any other string
//!   (below), naming what is encoded and its version, e.g. `attune.revision.v1`; two
//!   different kinds of message can therefore never share an encoding;
//! - fixed-size fields are written as they are: `u8` as one byte, `u32` as 4 bytes
//!   big-endian, `u64` as 8 bytes big-endian, `i64` as 8 bytes big-endian two's complement,
//!   ids as their 16 UUID bytes, hashes as their 32 bytes;
//! - variable-size fields (strings as UTF-8, byte strings) are **length-prefixed**: the
//!   length as a `u64` big-endian, then the bytes;
//! - an optional field is one byte `0` (absent) or `1` followed by the value.
//!
//! Because every variable-size field carries its length and every optional field its tag,
//! the encoding is unambiguous: two different values never encode to the same bytes.

use thiserror::Error;

/// Why bytes could not be decoded as the expected canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the value does.
    #[error("the data is truncated")]
    Truncated,
    /// Bytes are left over after the value.
    #[error("unexpected bytes after the end of the data")]
    TrailingBytes,
    /// The domain tag names something else (or another version).
    #[error("the data is not a {expected}")]
    WrongDomain {
        /// The domain tag that was expected.
        expected: &'static str,
    },
    /// An optional field's tag byte is neither 0 nor 1.
    #[error("invalid optional-field tag {0}")]
    InvalidTag(u8),
    /// A string is not valid UTF-8.
    #[error("a text field is not valid UTF-8")]
    InvalidUtf8,
    /// A record kind this version of Attune does not know.
    #[error("unknown record kind {0:?}")]
    UnknownKind(String),
    /// The content hash stored with a revision does not match its content.
    #[error("the content hash does not match the content")]
    HashMismatch,
}

/// Writes the canonical encoding described in the module documentation.
pub(crate) struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts an encoding with its domain tag.
    pub(crate) fn new(domain: &str) -> Self {
        let mut encoder = Self { buf: Vec::new() };
        encoder.str(domain);
        encoder
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.buf.push(value);
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, value: i64) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A fixed-size field: written without a length.
    pub(crate) fn fixed(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// A variable-size byte string: `u64` big-endian length, then the bytes.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        // usize always fits in u64 on the platforms Rust supports.
        self.buf
            .extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn str(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    /// An optional field: tag byte 0, or tag byte 1 then the value written by `write`.
    pub(crate) fn option<T>(
        &mut self,
        value: Option<T>,
        write: impl FnOnce(&mut Self, T),
    ) -> &mut Self {
        match value {
            None => {
                self.u8(0);
            }
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Reads the canonical encoding; every read checks the remaining length first, so malformed
/// input gives a [`DecodeError`], never a panic.
pub(crate) struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// Starts decoding, checking the domain tag.
    pub(crate) fn new(bytes: &'a [u8], domain: &'static str) -> Result<Self, DecodeError> {
        let mut decoder = Self { rest: bytes };
        if decoder.bytes()? != domain.as_bytes() {
            return Err(DecodeError::WrongDomain { expected: domain });
        }
        Ok(decoder)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = u64::from_be_bytes(self.array()?);
        // A length that does not fit in usize cannot fit in the remaining input either.
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        self.take(len)
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8)
    }

    pub(crate) fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            tag => Err(DecodeError::InvalidTag(tag)),
        }
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixes_keep_neighbouring_strings_apart() {
        let ab_c = Encoder::new("t").str("ab").str("c").finish();
        let a_bc = Encoder::new("t").str("a").str("bc").finish();
        assert_ne!(ab_c, a_bc);
    }

    #[test]
    fn decoding_reads_back_what_was_written() {
        let bytes = Encoder::new("t")
            .u8(7)
            .u32(0xdead_beef)
            .i64(-5)
            .str("héllo")
            .option(Some(3u32), |e, v| {
                e.u32(v);
            })
            .option(None::<u32>, |e, v| {
                e.u32(v);
            })
            .finish();
        let mut d = Decoder::new(&bytes, "t").unwrap();
        assert_eq!(d.u8().unwrap(), 7);
        assert_eq!(d.u32().unwrap(), 0xdead_beef);
        assert_eq!(d.i64().unwrap(), -5);
        assert_eq!(d.string().unwrap(), "héllo");
        assert_eq!(d.option(|d| d.u32()).unwrap(), Some(3));
        assert_eq!(d.option(|d| d.u32()).unwrap(), None);
        d.finish().unwrap();
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(Decoder::new(b"", "t").err(), Some(DecodeError::Truncated));
        let huge_length = [0xff; 8];
        assert_eq!(
            Decoder::new(&huge_length, "t").err(),
            Some(DecodeError::Truncated)
        );
        let other = Encoder::new("u").finish();
        assert_eq!(
            Decoder::new(&other, "t").err(),
            Some(DecodeError::WrongDomain { expected: "t" })
        );
        let bad_tag = Encoder::new("t").u8(9).finish();
        let mut d = Decoder::new(&bad_tag, "t").unwrap();
        assert_eq!(d.option(|d| d.u8()), Err(DecodeError::InvalidTag(9)));
    }
}
