//! One Word document per interview (`interviews/<code>-<date>-<n>.docx`, Office Open XML):
//! the title, who and when, then the guide's sections as Heading 1 and each question's words
//! as Heading 2 with the notes under it as paragraphs, and the flags marked in bold after
//! each note. NVivo, ATLAS.ti and MAXQDA read `.docx` and can code every paragraph under a
//! heading to that heading (auto-coding by heading style), which gives one code per question.

use super::xml::{Xml, escape};
use super::{ExportError, ExportFile, Interview, Study, zip};

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
  <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
  <Default Extension="xml" ContentType="application/xml"/>
  <Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
  <Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>
  <Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>
</Types>
"#;

const RELATIONSHIPS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
  <Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
  <Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>
</Relationships>
"#;

const DOCUMENT_RELATIONSHIPS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
  <Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>
"#;

/// Word's built-in style names ("heading 2" is what auto-coding by heading looks for).
const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
  <w:docDefaults>
    <w:rPrDefault><w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" w:eastAsia="Calibri" w:cs="Calibri"/><w:sz w:val="24"/><w:lang w:val="en-GB"/></w:rPr></w:rPrDefault>
    <w:pPrDefault><w:pPr><w:spacing w:after="160" w:line="276" w:lineRule="auto"/></w:pPr></w:pPrDefault>
  </w:docDefaults>
  <w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/><w:qFormat/></w:style>
  <w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/><w:rPr><w:b/><w:sz w:val="40"/></w:rPr></w:style>
  <w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/><w:pPr><w:keepNext/><w:spacing w:before="360" w:after="120"/><w:outlineLvl w:val="0"/></w:pPr><w:rPr><w:b/><w:sz w:val="32"/></w:rPr></w:style>
  <w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/><w:pPr><w:keepNext/><w:spacing w:before="240" w:after="80"/><w:outlineLvl w:val="1"/></w:pPr><w:rPr><w:b/><w:sz w:val="26"/></w:rPr></w:style>
</w:styles>
"#;

/// A paragraph in `style` (none: Normal) of one run, with line breaks kept.
fn paragraph(style: Option<&str>, text: &str, bold_tail: &str) -> String {
    let mut out = String::from("<w:p>");
    if let Some(style) = style {
        out.push_str(&format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>"));
    }
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    for (i, line) in normalised.split('\n').enumerate() {
        out.push_str("<w:r>");
        if i > 0 {
            out.push_str("<w:br/>");
        }
        out.push_str(&format!(
            "<w:t xml:space=\"preserve\">{}</w:t></w:r>",
            escape(line)
        ));
    }
    if !bold_tail.is_empty() {
        out.push_str(&format!(
            "<w:r><w:rPr><w:b/></w:rPr><w:t xml:space=\"preserve\"> {}</w:t></w:r>",
            escape(bold_tail)
        ));
    }
    out.push_str("</w:p>\n");
    out
}

fn document(study: &Study<'_>, interview: &Interview<'_>) -> String {
    let mut body = String::new();
    body.push_str(&paragraph(Some("Title"), &interview.title(), ""));
    let fieldworker = interview
        .notes
        .first()
        .map_or("", |n| n.record.fieldworker.as_str());
    let recording = interview
        .recording
        .and_then(|r| r.record.file.as_deref())
        .unwrap_or("none");
    body.push_str(&paragraph(
        None,
        &format!(
            "Participant: {}. Fieldworker: {fieldworker}. Visit date: {}. Recording: {recording}.",
            interview.code,
            interview.date.date_utc()
        ),
        "",
    ));
    let mut section: Option<&str> = None;
    let mut free = false;
    for note in &interview.notes {
        match interview.place(&note.body) {
            Some(place) => {
                if section != Some(place.section.id.as_str()) {
                    body.push_str(&paragraph(Some("Heading1"), &place.section.title, ""));
                    section = Some(place.section.id.as_str());
                }
                body.push_str(&paragraph(
                    Some("Heading2"),
                    &format!("{}. {}", place.number, place.question.text),
                    "",
                ));
            }
            None if !free => {
                body.push_str(&paragraph(Some("Heading1"), "Free notes", ""));
                free = true;
            }
            None => {}
        }
        let marks = study.note_marks(note);
        body.push_str(&paragraph(None, note.body.text.trim_end(), &marks));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\n\
         <w:body>\n{body}<w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/><w:pgMar w:top=\"1440\" w:right=\"1440\" w:bottom=\"1440\" w:left=\"1440\" w:header=\"708\" w:footer=\"708\" w:gutter=\"0\"/></w:sectPr>\n\
         </w:body>\n</w:document>\n"
    )
}

fn core_properties(study: &Study<'_>, interview: &Interview<'_>) -> String {
    let created = study.input.exported_at.to_rfc3339();
    // W3CDTF without milliseconds.
    let created = format!("{}Z", &created[..19]);
    let mut xml = Xml::new();
    xml.open(
        "cp:coreProperties",
        &[
            (
                "xmlns:cp",
                "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
            ),
            ("xmlns:dc", "http://purl.org/dc/elements/1.1/"),
            ("xmlns:dcterms", "http://purl.org/dc/terms/"),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
        ],
    )
    .text("dc:title", &[], &interview.title())
    .text("dc:creator", &[], &format!("Attune {}", crate::VERSION))
    .text(
        "dcterms:created",
        &[("xsi:type", "dcterms:W3CDTF")],
        &created,
    );
    xml.finish()
}

pub(crate) fn documents(
    study: &Study<'_>,
    interviews: &[Interview<'_>],
) -> Result<Vec<ExportFile>, ExportError> {
    interviews
        .iter()
        .map(|interview| {
            let entries = vec![
                (
                    "[Content_Types].xml".to_owned(),
                    CONTENT_TYPES.as_bytes().to_vec(),
                ),
                ("_rels/.rels".to_owned(), RELATIONSHIPS.as_bytes().to_vec()),
                (
                    "docProps/core.xml".to_owned(),
                    core_properties(study, interview).into_bytes(),
                ),
                (
                    "word/document.xml".to_owned(),
                    document(study, interview).into_bytes(),
                ),
                (
                    "word/_rels/document.xml.rels".to_owned(),
                    DOCUMENT_RELATIONSHIPS.as_bytes().to_vec(),
                ),
                ("word/styles.xml".to_owned(), STYLES.as_bytes().to_vec()),
            ];
            Ok(ExportFile {
                name: format!("interviews/{}.docx", interview.stem),
                bytes: zip::zip(&entries)?,
            })
        })
        .collect()
}
