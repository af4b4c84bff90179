//! An ELAN annotation document (EAF 3.0) per recorded interview, `elan/<stem>.eaf`: the
//! recording linked (absolute and relative to the file), one tier per question with the
//! notes aligned from the moment the question started, a tier of free notes, and a tier of
//! the notes' flags over the same spans. A note's span ends where the next timed note starts,
//! else at the end of the recording, else 30 seconds on. Notes with no time in the recording
//! are left out here (they are in `interview_notes.csv` and the other files).

use super::layout::note_times;
use super::xml::Xml;
use super::{ExportFile, Interview, Study};
use crate::fieldwork::NoteFlag;

/// The media type ELAN is told, from the recording's (without codec parameters).
fn mime(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or(media_type)
        .trim()
        .to_owned()
}

/// A `file://` URL of an absolute path, with the characters URLs cannot hold escaped.
fn file_url(path: &str) -> String {
    let mut out = String::from("file://");
    if !path.starts_with('/') {
        out.push('/');
    }
    for byte in path.replace('\\', "/").bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

pub(crate) fn transcriptions(study: &Study<'_>, interviews: &[Interview<'_>]) -> Vec<ExportFile> {
    interviews
        .iter()
        .filter_map(|interview| {
            let recording = interview.recording?;
            let file = recording.record.file.as_deref()?;
            Some(ExportFile {
                name: format!("elan/{}.eaf", interview.stem),
                bytes: document(study, interview, &recording.body.media_type, file).into_bytes(),
            })
        })
        .collect()
}

/// One tier: its id and its annotations (start ms, end ms, value).
struct Tier {
    id: String,
    annotations: Vec<(u64, u64, String)>,
}

/// The tiers: one per question with a timed note (in guide order), free notes, and the flags.
fn tiers(study: &Study<'_>, interview: &Interview<'_>) -> Vec<Tier> {
    let times = note_times(interview);
    let mut tiers: Vec<Tier> = Vec::new();
    let mut flags = Tier {
        id: "Flags".into(),
        annotations: Vec::new(),
    };
    for (index, note) in interview.notes.iter().enumerate() {
        let Some((start, end)) = times[index] else {
            continue;
        };
        let tier_id = match interview.place(&note.body) {
            Some(place) => format!("Q{} {}", place.number, place.question.text),
            None => "Free notes".to_owned(),
        };
        let value = note.body.text.trim_end().to_owned();
        match tiers.iter_mut().find(|t| t.id == tier_id) {
            Some(tier) => tier.annotations.push((start, end, value)),
            None => tiers.push(Tier {
                id: tier_id,
                annotations: vec![(start, end, value)],
            }),
        }
        let mut marks: Vec<&str> = NoteFlag::ALL
            .iter()
            .filter(|f| note.body.has_flag(**f))
            .map(|f| f.label())
            .collect();
        if study.quote_not_agreed(note) {
            marks.push("Not agreed for quotes");
        }
        if !marks.is_empty() {
            flags.annotations.push((start, end, marks.join("; ")));
        }
    }
    tiers.push(flags);
    tiers
}

fn document(study: &Study<'_>, interview: &Interview<'_>, media_type: &str, file: &str) -> String {
    let tiers = tiers(study, interview);
    let mut xml = Xml::new();
    let date = study.input.exported_at.to_rfc3339();
    let author = format!("Attune {}", crate::VERSION);
    xml.open(
        "ANNOTATION_DOCUMENT",
        &[
            ("AUTHOR", &author),
            ("DATE", &date),
            ("FORMAT", "3.0"),
            ("VERSION", "3.0"),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            (
                "xsi:noNamespaceSchemaLocation",
                "http://www.mpi.nl/tools/elan/EAFv3.0.xsd",
            ),
        ],
    );
    let base = study.input.base_path.trim_end_matches('/');
    xml.open(
        "HEADER",
        &[("MEDIA_FILE", ""), ("TIME_UNITS", "milliseconds")],
    )
    .empty(
        "MEDIA_DESCRIPTOR",
        &[
            ("MEDIA_URL", &file_url(&format!("{base}/{file}"))),
            ("MIME_TYPE", &mime(media_type)),
            ("RELATIVE_MEDIA_URL", &format!("../{file}")),
        ],
    );
    let count: usize = tiers.iter().map(|t| t.annotations.len()).sum();
    xml.text(
        "PROPERTY",
        &[("NAME", "lastUsedAnnotationId")],
        &count.to_string(),
    );
    xml.close();
    // Two time slots per annotation, numbered in tier order.
    xml.open("TIME_ORDER", &[]);
    let mut slot = 0;
    for tier in &tiers {
        for (start, end, _) in &tier.annotations {
            for value in [start, end] {
                slot += 1;
                xml.empty(
                    "TIME_SLOT",
                    &[
                        ("TIME_SLOT_ID", &format!("ts{slot}")),
                        ("TIME_VALUE", &value.to_string()),
                    ],
                );
            }
        }
    }
    xml.close();
    let (mut slot, mut annotation) = (0, 0);
    for tier in &tiers {
        xml.open(
            "TIER",
            &[("LINGUISTIC_TYPE_REF", "notes"), ("TIER_ID", &tier.id)],
        );
        for (_, _, value) in &tier.annotations {
            annotation += 1;
            let (from, to) = (slot + 1, slot + 2);
            slot += 2;
            xml.open("ANNOTATION", &[])
                .open(
                    "ALIGNABLE_ANNOTATION",
                    &[
                        ("ANNOTATION_ID", &format!("a{annotation}")),
                        ("TIME_SLOT_REF1", &format!("ts{from}")),
                        ("TIME_SLOT_REF2", &format!("ts{to}")),
                    ],
                )
                .text("ANNOTATION_VALUE", &[], value)
                .close()
                .close();
        }
        xml.close();
    }
    xml.empty(
        "LINGUISTIC_TYPE",
        &[
            ("GRAPHIC_REFERENCES", "false"),
            ("LINGUISTIC_TYPE_ID", "notes"),
            ("TIME_ALIGNABLE", "true"),
        ],
    );
    xml.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_links_are_urls() {
        assert_eq!(
            file_url("/data/export 1/a#b.webm"),
            "file:///data/export%201/a%23b.webm"
        );
        assert_eq!(mime("audio/webm;codecs=opus"), "audio/webm");
    }
}
