//! The REFI-QDA project (`attune.qdpx`) that NVivo, ATLAS.ti, MAXQDA and QualCoder import:
//! a zip of `project.qde` (QDA-XML 1.0, `urn:QDA-XML:project:1.0`) and `sources/`.
//!
//! - **Codes**: the note flags (quote, follow up, safeguarding concern, and "quote not
//!   agreed"), every question of every guide (under its guide), every activity prompt.
//! - **Text sources**: one per interview, laid out question by question (the question's words
//!   as a heading, then the note), each note's text coded with its question and its flags;
//!   one per child session with the activities' prompts and answers in words.
//! - **Audio sources**: an interview's recording (a `relative://` path under the export
//!   folder, the project's `basePath`), with the notes as a transcript synchronised at their
//!   times and as audio selections coded like the text.
//! - **Picture sources**: the children's drawings, inside the project.
//! - **Cases**: one per participant, with variables (group, status, visits, linked
//!   participants, each consent answer) and the sources that are theirs.
//!
//! Positions in text are counted in characters (Unicode scalar values) from 0, times in
//! milliseconds; every GUID is derived from the data ([`super::guid`]), so an export of the
//! same data is the same project.

mod codes;
mod sources;

use std::collections::{BTreeMap, BTreeSet};

use super::xml::Xml;
use super::{ExportError, ExportFile, Interview, Study, guid, zip};

const NAMESPACE: &str = "urn:QDA-XML:project:1.0";

/// A project being written: the sources are gathered first, so each case can name its own.
pub(super) struct Project<'a, 's> {
    study: &'s Study<'a>,
    created: String,
    /// The files of `sources/` (name, content).
    files: Vec<(String, Vec<u8>)>,
    /// The `<Sources>` element's children.
    sources: Xml,
    /// Each participant's sources, by participant id.
    owned: BTreeMap<String, Vec<String>>,
}

impl<'a, 's> Project<'a, 's> {
    /// A fieldworker's user GUID.
    fn user(name: &str) -> String {
        guid(&["user", name])
    }

    fn own(&mut self, participant: &str, source: String) {
        self.owned
            .entry(participant.to_owned())
            .or_default()
            .push(source);
    }

    /// `<Users>`: the fieldworkers whose devices recorded the data.
    fn users(&self, xml: &mut Xml) {
        let fieldworkers: BTreeSet<&str> = self
            .study
            .input
            .records
            .iter()
            .map(|r| r.fieldworker.as_str())
            .filter(|f| !f.is_empty())
            .collect();
        if fieldworkers.is_empty() {
            return;
        }
        xml.open("Users", &[]);
        for name in fieldworkers {
            xml.empty("User", &[("guid", &Project::user(name)), ("name", name)]);
        }
        xml.close();
    }

    /// The consent items the cases have a variable for: the newest protocol's, then any
    /// other a consent answered.
    fn consent_items(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut items = Vec::new();
        let forms = self.study.protocol.consent_forms.iter();
        let protocol_items = forms.flat_map(|f| f.items.iter().map(|i| i.id.clone()));
        let answered = self
            .study
            .consents
            .iter()
            .flat_map(|c| c.body.answers.0.keys().cloned());
        for id in protocol_items.chain(answered) {
            if seen.insert(id.clone()) {
                items.push(id);
            }
        }
        items
    }

    /// `<Variables>`: the cases' attributes.
    fn variables(xml: &mut Xml, consent_items: &[String]) {
        let mut variables: Vec<(String, &str)> = vec![
            ("Group".into(), "Text"),
            ("Status".into(), "Text"),
            ("Visits".into(), "Integer"),
            ("Linked participants".into(), "Text"),
        ];
        variables.extend(
            consent_items
                .iter()
                .map(|id| (format!("Consent: {id}"), "Boolean")),
        );
        xml.open("Variables", &[]);
        for (name, kind) in &variables {
            xml.empty(
                "Variable",
                &[
                    ("guid", &variable(name)),
                    ("name", name),
                    ("typeOfVariable", kind),
                ],
            );
        }
        xml.close();
    }

    /// `<Cases>`: one per participant, with their attributes and sources.
    fn cases(&self, xml: &mut Xml, consent_items: &[String]) {
        let study = self.study;
        if study.participants.is_empty() {
            return;
        }
        xml.open("Cases", &[]);
        for p in &study.participants {
            let id = p.id();
            xml.open(
                "Case",
                &[("guid", &guid(&["case", &id])), ("name", &p.body.code)],
            );
            let group = study
                .protocol
                .group(&p.body.group)
                .map_or(p.body.group.as_str(), |g| g.name.as_str());
            xml.text("Description", &[], &format!("{} ({group})", p.body.code));
            let status = if p.body.is_active() {
                "Taking part"
            } else {
                "Withdrawn (data kept)"
            };
            let mut values: Vec<(String, &str, String)> = vec![
                ("Group".into(), "TextValue", group.to_owned()),
                ("Status".into(), "TextValue", status.to_owned()),
                (
                    "Visits".into(),
                    "IntegerValue",
                    study.visit_count(&id).to_string(),
                ),
                (
                    "Linked participants".into(),
                    "TextValue",
                    study.linked_codes(&p.body).join("; "),
                ),
            ];
            if let Some((consent, _)) = study.latest_consent(&id) {
                for item in consent_items {
                    if let Some(answer) = consent.body.answers.get(item) {
                        values.push((
                            format!("Consent: {item}"),
                            "BooleanValue",
                            answer.to_string(),
                        ));
                    }
                }
            }
            for (name, element, value) in &values {
                xml.open("VariableValue", &[])
                    .empty("VariableRef", &[("targetGUID", &variable(name))]);
                match *element {
                    "TextValue" => xml.text("TextValue", &[], value),
                    "IntegerValue" => xml.text("IntegerValue", &[], value),
                    _ => xml.text("BooleanValue", &[], value),
                };
                xml.close();
            }
            for source in self.owned.get(&id).into_iter().flatten() {
                xml.empty("SourceRef", &[("targetGUID", source)]);
            }
            xml.close();
        }
        xml.close();
    }
}

/// A case variable's GUID.
fn variable(name: &str) -> String {
    guid(&["variable", name])
}

/// `attune.qdpx`: `project.qde` (in the schema's element order: users, codebook, variables,
/// cases, sources) and the sources' files.
pub(crate) fn project(
    study: &Study<'_>,
    interviews: &[Interview<'_>],
) -> Result<ExportFile, ExportError> {
    let mut project = Project {
        study,
        created: study.input.exported_at.to_rfc3339(),
        files: Vec::new(),
        sources: Xml::fragment(2),
        owned: BTreeMap::new(),
    };
    for interview in interviews {
        project.interview(interview);
    }
    project.child_sessions();

    let mut xml = Xml::new();
    let origin = format!("Attune {}", crate::VERSION);
    xml.open(
        "Project",
        &[
            ("xmlns", NAMESPACE),
            ("name", &study.protocol.title),
            ("origin", &origin),
            ("creationDateTime", &project.created),
            ("basePath", study.input.base_path),
        ],
    );
    project.users(&mut xml);
    codes::codebook(&mut xml, study);
    let consent_items = project.consent_items();
    Project::variables(&mut xml, &consent_items);
    project.cases(&mut xml, &consent_items);
    if !project.sources.is_empty() {
        let sources = std::mem::replace(&mut project.sources, Xml::fragment(2));
        xml.open("Sources", &[]).raw(&sources.finish()).close();
    }
    let mut entries = vec![("project.qde".to_owned(), xml.finish().into_bytes())];
    entries.extend(project.files);
    Ok(ExportFile {
        name: "attune.qdpx".into(),
        bytes: zip::zip(&entries)?,
    })
}
