//! A minimal CBOR (RFC 8949) reader for WebAuthn's attestation objects and COSE keys.
//!
//! It reads the types those use: unsigned and negative integers, byte and text strings,
//! arrays, maps, `false`, `true` and `null`, all with definite lengths. Anything else
//! (indefinite lengths, tags, floats, other simple values), a length beyond the input,
//! nesting deeper than [`MAX_DEPTH`] or bytes left over is refused with a [`CborError`]; it
//! never panics and never allocates more than the input could hold.

/// How deeply arrays and maps may nest (a COSE key inside an attestation object is 2 deep).
pub const MAX_DEPTH: usize = 8;

/// A CBOR data item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Major type 0.
    Unsigned(u64),
    /// Major type 1: the value is `-1 - n`.
    Negative(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    /// Entries in the order they were encoded.
    Map(Vec<(Value, Value)>),
    Bool(bool),
    Null,
}

/// Why bytes are not CBOR this reader takes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed CBOR at byte {at}: {problem}")]
pub struct CborError {
    pub at: usize,
    pub problem: &'static str,
}

impl Value {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Unsigned(n) => Some(i128::from(*n)),
            Value::Negative(n) => Some(-1 - i128::from(*n)),
            _ => None,
        }
    }

    /// The value under an integer key of a map.
    pub fn get_int(&self, key: i128) -> Option<&Value> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_int() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value under a text key of a map.
    pub fn get_text(&self, key: &str) -> Option<&Value> {
        self.entries()?
            .iter()
            .find(|(k, _)| matches!(k, Value::Text(text) if text == key))
            .map(|(_, v)| v)
    }

    /// The entries, if this is a map.
    pub fn entries(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The text, if this is a text string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// Reads exactly one item from `bytes` (nothing may follow).
pub fn decode(bytes: &[u8]) -> Result<Value, CborError> {
    let (value, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(CborError {
            at: used,
            problem: "bytes left after the item",
        });
    }
    Ok(value)
}

/// Reads one item from the start of `bytes`; returns it and how many bytes it took.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), CborError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.item(0)?;
    Ok((value, reader.at))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, problem: &'static str) -> Result<T, CborError> {
        Err(CborError {
            at: self.at,
            problem,
        })
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return self.fail("the input ends inside an item");
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    /// The argument of a head whose low five bits are `info`.
    fn argument(&mut self, info: u8) -> Result<u64, CborError> {
        let width = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return self.fail("indefinite lengths are not accepted"),
            _ => return self.fail("reserved additional information"),
        };
        let bytes = self.take(width)?;
        Ok(bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b)))
    }

    /// A length that the rest of the input can hold at `min_size` bytes per element.
    fn length(&mut self, info: u8, min_size: usize) -> Result<usize, CborError> {
        let length = self.argument(info)?;
        let left = self.bytes.len() - self.at;
        match usize::try_from(length) {
            Ok(length) if length.saturating_mul(min_size) <= left => Ok(length),
            _ => self.fail("a length beyond the end of the input"),
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        let head = self.take(1)?[0];
        let (major, info) = (head >> 5, head & 0x1f);
        Ok(match major {
            0 => Value::Unsigned(self.argument(info)?),
            1 => Value::Negative(self.argument(info)?),
            2 => {
                let length = self.length(info, 1)?;
                Value::Bytes(self.take(length)?.to_vec())
            }
            3 => {
                let length = self.length(info, 1)?;
                let start = self.at;
                let bytes = self.take(length)?.to_vec();
                match String::from_utf8(bytes) {
                    Ok(text) => Value::Text(text),
                    Err(_) => {
                        self.at = start;
                        return self.fail("a text string that is not UTF-8");
                    }
                }
            }
            4 => {
                let length = self.length(info, 1)?;
                let mut items = Vec::with_capacity(length);
                for _ in 0..length {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                let length = self.length(info, 2)?;
                let mut entries = Vec::with_capacity(length);
                for _ in 0..length {
                    let key = self.item(depth + 1)?;
                    if entries.iter().any(|(k, _)| *k == key) {
                        return self.fail("a map key given twice");
                    }
                    entries.push((key, self.item(depth + 1)?));
                }
                Value::Map(entries)
            }
            6 => return self.fail("tags are not accepted"),
            _ => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                _ => return self.fail("floats and other simple values are not accepted"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, decode, decode_prefix};

    #[test]
    fn the_items_webauthn_uses_are_read() {
        // {"fmt": "none", "attStmt": {}, "authData": h'0102'}
        let object = [
            0xa3, 0x63, b'f', b'm', b't', 0x64, b'n', b'o', b'n', b'e', 0x67, b'a', b't', b't',
            b'S', b't', b'm', b't', 0xa0, 0x68, b'a', b'u', b't', b'h', b'D', b'a', b't', b'a',
            0x42, 1, 2,
        ];
        let value = decode(&object).unwrap();
        assert_eq!(value.get_text("fmt").unwrap().as_text(), Some("none"));
        assert_eq!(value.get_text("attStmt"), Some(&Value::Map(vec![])));
        assert_eq!(
            value.get_text("authData").unwrap().as_bytes(),
            Some(&[1, 2][..])
        );
        // A COSE key: {1: 2, 3: -7, -1: 1}, then a byte that is not part of it.
        let (key, used) = decode_prefix(&[0xa3, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0xff]).unwrap();
        assert_eq!(used, 7);
        assert_eq!(key.get_int(3).and_then(Value::as_int), Some(-7));
        assert_eq!(key.get_int(-1).and_then(Value::as_int), Some(1));
        assert_eq!(decode(&[0x19, 0x01, 0x00]).unwrap(), Value::Unsigned(256));
        assert_eq!(
            decode(&[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .unwrap()
                .as_int(),
            Some(-18_446_744_073_709_551_616)
        );
        assert_eq!(
            decode(&[0x82, 0xf5, 0xf6]).unwrap(),
            Value::Array(vec![Value::Bool(true), Value::Null])
        );
    }

    #[test]
    fn malformed_input_is_refused_without_panicking() {
        let refused: &[(&[u8], &str)] = &[
            (&[], "ends inside"),
            (&[0x42, 1], "beyond the end"),
            (
                &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "beyond the end",
            ),
            (
                &[0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "beyond the end",
            ),
            (&[0x5f, 0x41, 0x00, 0xff], "indefinite"),
            (&[0xc0, 0x00], "tags"),
            (&[0xf9, 0x00, 0x00], "floats"),
            (&[0x1c], "reserved"),
            (&[0x62, 0xff, 0xfe], "UTF-8"),
            (&[0xa2, 0x01, 0x02, 0x01, 0x03], "twice"),
            (&[0x01, 0x02], "left after"),
            (&[0x81; 20], "deeply"),
        ];
        for (bytes, problem) in refused {
            let error = decode(bytes).unwrap_err();
            assert!(error.to_string().contains(problem), "{bytes:?}: {error}");
        }
        // Every prefix of a valid item is refused, never read past its end.
        let object = [0xa2, 0x61, b'a', 0x42, 1, 2, 0x61, b'b', 0x80];
        assert!(decode(&object).is_ok());
        for end in 0..object.len() {
            assert!(decode(&object[..end]).is_err(), "{end}");
        }
    }
}
