//! A minimal, deterministic zip writer for the export's `.qdpx` and `.docx` files: entries
//! are stored (not compressed), named in UTF-8, dated 1980-01-01 00:00 (the earliest DOS
//! date, so the same data always gives the same bytes) and marked owner-read/write only.
//! Both formats are small text and PNG files; the audio stays outside, beside the project.
//! The researcher console zips the whole export with it too ([`zip`], [`check_size`]).
//!
//! There is no Zip64: an entry or an archive over 4 GiB (or over 65,535 entries) is refused
//! with [`ExportError::NeedsZip64`] (or [`ExportError::TooLarge`]) before anything is
//! written, never written as a broken zip.

use super::ExportError;

/// CRC-32 (IEEE 802.3, as zip uses it), table-driven.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    };
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc = TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}

/// The DOS date of 1980-01-01 (day 1, month 1, year 0 from 1980).
const DOS_DATE: u16 = (1 << 5) | 1;
/// General purpose flag bit 11: the name is UTF-8.
const UTF8_NAMES: u16 = 1 << 11;
/// Version 2.0 of the format, made on Unix (so the external attributes are Unix modes).
const MADE_BY_UNIX: u16 = (3 << 8) | 20;
/// `-rw-------` as a regular file.
const OWNER_ONLY: u32 = 0o100_600 << 16;

fn u16_of(n: usize, what: &str) -> Result<u16, ExportError> {
    u16::try_from(n).map_err(|_| ExportError::TooLarge(what.to_owned()))
}

fn u32_of(n: usize, what: &str) -> Result<u32, ExportError> {
    u32::try_from(n).map_err(|_| ExportError::TooLarge(what.to_owned()))
}

/// The largest size a zip without Zip64 can give an entry, an offset or the archive.
const LIMIT: u64 = u32::MAX as u64;

/// The size in bytes of the zip [`zip`] writes for entries of these (name length, content
/// length), checked against the format's limits before anything is allocated.
///
/// # Errors
/// [`ExportError::NeedsZip64`] when an entry or the archive would pass 4 GiB;
/// [`ExportError::TooLarge`] for more than 65,535 entries or a name over 65,535 bytes.
pub fn check_size(entries: impl IntoIterator<Item = (usize, u64)>) -> Result<u64, ExportError> {
    let mut total: u64 = 22; // the end of central directory record
    let mut count = 0usize;
    for (name_len, data_len) in entries {
        count += 1;
        u16_of(name_len, "a file name")?;
        if data_len > LIMIT {
            return Err(ExportError::NeedsZip64 {
                what: format!("file {count} of the zip"),
                bytes: data_len,
            });
        }
        let name = name_len as u64;
        // Local header and data, then the central directory entry.
        total = total.saturating_add(30 + name + data_len + 46 + name);
    }
    u16_of(count, "the number of files")?;
    if total > LIMIT {
        return Err(ExportError::NeedsZip64 {
            what: "the zip".into(),
            bytes: total,
        });
    }
    Ok(total)
}

/// A zip archive of `entries` (name, content), in the order given: stored, CRC-32 of each
/// entry written (and checked by [`unzip`]).
///
/// # Errors
/// [`ExportError::NeedsZip64`] when an entry or the archive would pass 4 GiB,
/// [`ExportError::TooLarge`] over 65,535 entries ([`check_size`]).
pub fn zip<N: AsRef<str>, D: AsRef<[u8]>>(entries: &[(N, D)]) -> Result<Vec<u8>, ExportError> {
    let size = check_size(
        entries
            .iter()
            .map(|(name, data)| (name.as_ref().len(), data.as_ref().len() as u64)),
    )?;
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut central = Vec::new();
    for (name, data) in entries {
        let (name, data) = (name.as_ref(), data.as_ref());
        let offset = u32_of(out.len(), name)?;
        let crc = crc32(data);
        let size = u32_of(data.len(), name)?;
        let name_len = u16_of(name.len(), name)?;
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&UTF8_NAMES.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // stored
        out.extend_from_slice(&0u16.to_le_bytes()); // 00:00
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Its central directory entry.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&MADE_BY_UNIX.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&UTF8_NAMES.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&DOS_DATE.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        central.extend_from_slice(&OWNER_ONLY.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let count = u16_of(entries.len(), "the number of files")?;
    let central_offset = u32_of(out.len(), "the archive")?;
    let central_size = u32_of(central.len(), "the archive")?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // this disk, the directory's disk
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

/// The entries of a zip written by [`zip`] (stored entries only): for tests and for the
/// console's read-back. `None` if it is not such a zip or a CRC does not match.
pub fn unzip(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let u16_at = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let u32_at = |at: usize| -> Option<usize> {
        usize::try_from(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)).ok()
    };
    let mut entries = Vec::new();
    let mut at = 0;
    while u32_at(at)? == 0x0403_4b50 {
        if u16_at(at + 8)? != 0 {
            return None; // compressed: not ours
        }
        let crc = u32_at(at + 14)?;
        let size = u32_at(at + 18)?;
        let name_len = u16_at(at + 26)?;
        let extra_len = u16_at(at + 28)?;
        let name_at = at + 30;
        let data_at = name_at + name_len + extra_len;
        let name = std::str::from_utf8(bytes.get(name_at..name_at + name_len)?).ok()?;
        let data = bytes.get(data_at..data_at + size)?;
        if usize::try_from(crc32(data)).ok()? != crc {
            return None;
        }
        entries.push((name.to_owned(), data.to_vec()));
        at = data_at + size;
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32 check value of "123456789" (as in every CRC catalogue).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_zip_reads_back_and_is_the_same_bytes_every_time() {
        let entries = vec![
            ("project.qde".to_owned(), b"<Project/>".to_vec()),
            ("sources/é.txt".to_owned(), "Grüße".as_bytes().to_vec()),
            ("empty".to_owned(), Vec::new()),
        ];
        let bytes = zip(&entries).unwrap();
        assert_eq!(bytes, zip(&entries).unwrap());
        assert_eq!(unzip(&bytes).unwrap(), entries);
        let mut broken = bytes.clone();
        broken[45] ^= 1; // inside the first entry's data (after 30 + 11 header bytes)
        assert_eq!(unzip(&broken), None);
    }
}
