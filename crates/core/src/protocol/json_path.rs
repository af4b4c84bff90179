//! Where in a protocol file a JSON error is: serde_json gives a line and column, and this
//! scan turns them into the field's path (`groups[2].target`).

/// The name between `` ` `` quotes after `lead` in a serde message (`missing field `x``).
pub(super) fn quoted_field<'m>(message: &'m str, lead: &str) -> Option<&'m str> {
    let rest = &message[message.find(lead)? + lead.len()..];
    rest.find('`').map(|end| &rest[..end])
}

/// The byte offset of serde_json's 1-based line and 0-based byte column.
pub(super) fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    if line == 0 {
        return 0;
    }
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    line_start.saturating_add(column).min(text.len())
}

/// Where a JSON scan stopped: the open objects and arrays.
pub(super) struct JsonScan {
    frames: Vec<Frame>,
    /// Whether the last thing read was the `}` closing an object.
    just_closed_object: bool,
}

enum Frame {
    /// An object, with the key whose value is being read (if any).
    Object { key: Option<String> },
    /// An array, with the index of the element being read (if one has started).
    Array { index: usize, started: bool },
}

impl JsonScan {
    /// The path of the value being read, e.g. `groups[2].target`.
    pub(super) fn path(&self) -> String {
        path_of(&self.frames)
    }

    /// The path of the object whose fields are being read: the innermost open object, or the
    /// one just closed (serde reports a missing field either inside the object or just
    /// after its `}`, depending on the version).
    pub(super) fn path_of_open_object(&self) -> String {
        match self.frames.last() {
            Some(Frame::Object { .. }) if !self.just_closed_object => {
                path_of(&self.frames[..self.frames.len() - 1])
            }
            _ => self.path(),
        }
    }
}

fn path_of(frames: &[Frame]) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Object { key: Some(key) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Array {
                index,
                started: true,
            } => path.push_str(&format!("[{index}]")),
            _ => {}
        }
    }
    path
}

/// Reads `text` up to `offset` bytes, tracking which object key or array element each open
/// container is at. Good enough for locating errors; it does not check the JSON.
pub(super) fn scan_json_path(text: &str, offset: usize) -> JsonScan {
    let bytes = &text.as_bytes()[..offset.min(text.len())];
    let mut frames: Vec<Frame> = Vec::new();
    let mut expecting_key = false;
    let mut just_closed_object = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        i += 1;
        if byte.is_ascii_whitespace() {
            continue;
        }
        just_closed_object = false;
        // A value starts: in an array, that is the current element.
        let value_start = matches!(byte, b'{' | b'[' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
            || (byte == b'"' && !expecting_key);
        if value_start && let Some(Frame::Array { started, .. }) = frames.last_mut() {
            *started = true;
        }
        match byte {
            b'"' => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(bytes.len());
                i = end.saturating_add(1);
                if expecting_key {
                    let key = String::from_utf8_lossy(&bytes[start..end]).into_owned();
                    if let Some(Frame::Object { key: current }) = frames.last_mut() {
                        *current = Some(key);
                    }
                    expecting_key = false;
                }
            }
            b'{' => {
                frames.push(Frame::Object { key: None });
                expecting_key = true;
            }
            b'[' => frames.push(Frame::Array {
                index: 0,
                started: false,
            }),
            b'}' | b']' => {
                just_closed_object = byte == b'}';
                frames.pop();
                expecting_key = false;
            }
            b',' => match frames.last_mut() {
                Some(Frame::Object { key }) => {
                    *key = None;
                    expecting_key = true;
                }
                Some(Frame::Array { index, started }) => {
                    *index += 1;
                    *started = false;
                }
                None => {}
            },
            _ => {}
        }
    }
    JsonScan {
        frames,
        just_closed_object,
    }
}
