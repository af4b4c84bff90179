//! The rows of the object stores: building them from attune-core types, and reading them
//! back without trusting them (a malformed row is an error naming its store, never a panic).
//!
//! Ids and hashes are strings (ids sort as strings in the same order as their bytes, so
//! IndexedDB's key order is record id order), numbers are JS numbers, optional fields are
//! left out rather than `null` (so a row without a participant is not in the participant
//! index), and sealed bytes are `Uint8Array`s.

use std::str::FromStr;

use attune_core::{BlobId, ContentHash, Kind, RecordId, StoreError, StoredRevision, Timestamp};
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::schema::{CHUNKS, HEADS, REVISIONS};

/// The largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// The key of revision `rev` of `record` in `revisions`.
pub(crate) fn revision_key(record: RecordId, rev: u32) -> JsValue {
    Array::of2(&record.to_string().into(), &rev.into()).into()
}

/// The key range of every revision of `record`, in revision order.
pub(crate) fn record_range(record: RecordId) -> Result<JsValue, JsValue> {
    record_key_range(&JsValue::from(record.to_string()))
}

/// [`record_range`] for a record id as stored in a key (a `heads` primary key).
pub(crate) fn record_key_range(id: &JsValue) -> Result<JsValue, JsValue> {
    let id = id.clone();
    let lower = Array::of2(&id, &0.into());
    let upper = Array::of2(&id, &f64::INFINITY.into());
    web_sys::IdbKeyRange::bound(&lower, &upper).map(Into::into)
}

/// The key of chunk `index` of `blob` in `chunks`.
pub(crate) fn chunk_key(blob: BlobId, index: u32) -> JsValue {
    Array::of2(&blob.to_string().into(), &index.into()).into()
}

/// The key range of every chunk of `blob`, in index order.
pub(crate) fn blob_range(blob: BlobId) -> Result<JsValue, JsValue> {
    let id = JsValue::from(blob.to_string());
    let lower = Array::of2(&id, &0.into());
    let upper = Array::of2(&id, &f64::INFINITY.into());
    web_sys::IdbKeyRange::bound(&lower, &upper).map(Into::into)
}

fn set(row: &Object, field: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(row, &field.into(), value).map(drop)
}

fn set_opt(row: &Object, field: &str, value: Option<impl ToString>) -> Result<(), JsValue> {
    match value {
        Some(value) => set(row, field, &value.to_string().into()),
        None => Ok(()),
    }
}

/// `time` as a JS number, if it is one exactly.
pub(crate) fn time_value(time: Timestamp) -> Result<JsValue, StoreError> {
    let millis = time.as_millis();
    if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&millis) {
        // Exact: checked to be within 2^53 above.
        Ok(JsValue::from_f64(millis as f64))
    } else {
        Err(StoreError::Backend(format!(
            "time {millis} is outside the range IndexedDB stores exactly"
        )))
    }
}

/// A `sequence` as a JS number.
pub(crate) fn seq_value(seq: u64) -> Result<JsValue, StoreError> {
    if seq <= MAX_SAFE_INTEGER as u64 {
        // Exact: checked to be within 2^53 above.
        Ok(JsValue::from_f64(seq as f64))
    } else {
        Err(StoreError::Backend(
            "the outbox sequence is exhausted".into(),
        ))
    }
}

/// The `revisions` row of `revision`, stored as number `seq` in put order.
///
/// Fields: `record_id`, `rev`, `parent_hash` (absent for revision 1), `kind`,
/// `participant` and `visit` (absent if none), `time`, `hash`, `synced`, `seq`, `outbox`
/// (`seq` while unsynced, absent once synced) and `sealed` (`Uint8Array`).
pub(crate) fn revision_row(revision: &StoredRevision, seq: u64) -> Result<Object, StoreError> {
    let time = time_value(revision.time)?;
    let seq = seq_value(seq)?;
    let row = Object::new();
    let build = || -> Result<(), JsValue> {
        set(&row, "record_id", &revision.record_id.to_string().into())?;
        set(&row, "rev", &revision.rev.into())?;
        set_opt(&row, "parent_hash", revision.parent_hash)?;
        set(&row, "kind", &revision.kind.as_str().into())?;
        set_opt(&row, "participant", revision.participant)?;
        set_opt(&row, "visit", revision.visit)?;
        set(&row, "time", &time)?;
        set(&row, "hash", &revision.hash.to_hex().into())?;
        set(&row, "synced", &revision.synced.into())?;
        set(&row, "seq", &seq)?;
        if !revision.synced {
            set(&row, "outbox", &seq)?;
        }
        set(
            &row,
            "sealed",
            &Uint8Array::new_from_slice(&revision.sealed),
        )
    };
    build().map_err(|error| row_build_error(REVISIONS, &error))?;
    Ok(row)
}

/// The `heads` row pointing at `revision` as its record's latest.
///
/// Fields: `record_id`, `rev`, `hash`, `kind`, `participant` and `visit` (absent if none).
pub(crate) fn head_row(revision: &StoredRevision) -> Result<Object, StoreError> {
    let row = Object::new();
    let build = || -> Result<(), JsValue> {
        set(&row, "record_id", &revision.record_id.to_string().into())?;
        set(&row, "rev", &revision.rev.into())?;
        set(&row, "hash", &revision.hash.to_hex().into())?;
        set(&row, "kind", &revision.kind.as_str().into())?;
        set_opt(&row, "participant", revision.participant)?;
        set_opt(&row, "visit", revision.visit)
    };
    build().map_err(|error| row_build_error(HEADS, &error))?;
    Ok(row)
}

/// The `chunks` row of chunk `index` of `blob`: `blob_id`, `index`, `sealed`.
pub(crate) fn chunk_row(blob: BlobId, index: u32, sealed: &[u8]) -> Result<Object, StoreError> {
    let row = Object::new();
    let build = || -> Result<(), JsValue> {
        set(&row, "blob_id", &blob.to_string().into())?;
        set(&row, "index", &index.into())?;
        set(&row, "sealed", &Uint8Array::new_from_slice(sealed))
    };
    build().map_err(|error| row_build_error(CHUNKS, &error))?;
    Ok(row)
}

fn row_build_error(store: &str, error: &JsValue) -> StoreError {
    StoreError::Backend(format!(
        "building a `{store}` row failed: {}",
        super::js::describe(error)
    ))
}

/// A row read from `store`, checked field by field.
pub(crate) struct Row<'a> {
    store: &'static str,
    value: &'a JsValue,
}

impl<'a> Row<'a> {
    /// Reads `value`, a row of `store`.
    pub(crate) fn new(store: &'static str, value: &'a JsValue) -> Result<Self, StoreError> {
        let row = Self { store, value };
        if value.is_object() {
            Ok(row)
        } else {
            Err(row.malformed("the row is not an object"))
        }
    }

    fn malformed(&self, problem: &str) -> StoreError {
        StoreError::Backend(format!(
            "malformed row in IndexedDB store `{}`: {problem}",
            self.store
        ))
    }

    fn field(&self, name: &str) -> Result<JsValue, StoreError> {
        Reflect::get(self.value, &name.into())
            .map_err(|_| self.malformed(&format!("field `{name}` cannot be read")))
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, StoreError> {
        let value = self.field(name)?;
        if value.is_undefined() {
            return Ok(None);
        }
        value
            .as_string()
            .map(Some)
            .ok_or_else(|| self.malformed(&format!("field `{name}` is not a string")))
    }

    fn opt_parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.opt_string(name)?
            .map(|text| {
                text.parse()
                    .map_err(|_| self.malformed(&format!("field `{name}` does not parse")))
            })
            .transpose()
    }

    fn parse<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_parse(name)?
            .ok_or_else(|| self.malformed(&format!("field `{name}` is missing")))
    }

    /// An integer field within `min..=max`.
    fn integer(&self, name: &str, min: i64, max: i64) -> Result<i64, StoreError> {
        let number = self
            .field(name)?
            .as_f64()
            .ok_or_else(|| self.malformed(&format!("field `{name}` is not a number")))?;
        let in_range = number.fract() == 0.0 && number >= min as f64 && number <= max as f64;
        if in_range {
            // Exact: an integer within the safe range (every caller's max is at most 2^53).
            Ok(number as i64)
        } else {
            Err(self.malformed(&format!("field `{name}` is out of range")))
        }
    }

    fn u32(&self, name: &str) -> Result<u32, StoreError> {
        let number = self.integer(name, 0, i64::from(u32::MAX))?;
        u32::try_from(number)
            .map_err(|_| self.malformed(&format!("field `{name}` is out of range")))
    }

    fn bool(&self, name: &str) -> Result<bool, StoreError> {
        self.field(name)?
            .as_bool()
            .ok_or_else(|| self.malformed(&format!("field `{name}` is not a boolean")))
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let value = self.field(name)?;
        if let Some(array) = value.dyn_ref::<Uint8Array>() {
            Ok(array.to_vec())
        } else if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
            Ok(Uint8Array::new(buffer).to_vec())
        } else {
            Err(self.malformed(&format!("field `{name}` is not bytes")))
        }
    }
}

/// A `revisions` row as a [`StoredRevision`].
pub(crate) fn read_revision(value: &JsValue) -> Result<StoredRevision, StoreError> {
    let row = Row::new(REVISIONS, value)?;
    Ok(StoredRevision {
        record_id: row.parse("record_id")?,
        rev: row.u32("rev")?,
        parent_hash: row.opt_parse::<ContentHash>("parent_hash")?,
        kind: row.parse::<Kind>("kind")?,
        participant: row.opt_parse("participant")?,
        visit: row.opt_parse("visit")?,
        time: Timestamp::from_millis(row.integer("time", -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)?),
        hash: row.parse("hash")?,
        synced: row.bool("synced")?,
        sealed: row.bytes("sealed")?,
    })
}

/// The sync fields of a `revisions` row: its hash and whether it is synced.
pub(crate) fn read_sync_state(value: &JsValue) -> Result<(ContentHash, bool), StoreError> {
    let row = Row::new(REVISIONS, value)?;
    Ok((row.parse("hash")?, row.bool("synced")?))
}

/// A `heads` row: which revision is its record's latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// The record.
    pub(crate) record_id: RecordId,
    /// Its latest revision number.
    pub(crate) rev: u32,
    /// That revision's hash (the parent the next revision must name).
    pub(crate) hash: ContentHash,
}

/// A `heads` row as a [`Head`].
pub(crate) fn read_head(value: &JsValue) -> Result<Head, StoreError> {
    let row = Row::new(HEADS, value)?;
    Ok(Head {
        record_id: row.parse("record_id")?,
        rev: row.u32("rev")?,
        hash: row.parse("hash")?,
    })
}

/// The sealed bytes of a `chunks` row.
pub(crate) fn read_chunk(value: &JsValue) -> Result<Vec<u8>, StoreError> {
    Row::new(CHUNKS, value)?.bytes("sealed")
}

/// A count or sequence number read from `store`.
pub(crate) fn read_count(store: &'static str, value: &JsValue) -> Result<u64, StoreError> {
    value
        .as_f64()
        .filter(|number| {
            number.fract() == 0.0 && *number >= 0.0 && *number <= MAX_SAFE_INTEGER as f64
        })
        // Exact: a non-negative integer within the safe range.
        .map(|number| number as u64)
        .ok_or_else(|| {
            StoreError::Backend(format!(
                "malformed value in IndexedDB store `{store}`: not a count"
            ))
        })
}

/// The rows of a `getAll` result.
pub(crate) fn read_array(store: &'static str, value: JsValue) -> Result<Array, StoreError> {
    value.dyn_into::<Array>().map_err(|_| {
        StoreError::Backend(format!(
            "IndexedDB store `{store}` returned a list that is not an array"
        ))
    })
}
