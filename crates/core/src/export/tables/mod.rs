//! The tidy CSVs (one row per observation, codes and words side by side, ISO 8601 times in
//! UTC), the codebook and README that name every column, and the R and SPSS scripts that load
//! them with their types and value labels. One description of each table ([`Table`]) makes
//! all of them, so they cannot disagree.
//!
//! - [`table`]: the description of a table and its CSV, and the codebook;
//! - [`fieldwork`]: participants, consents, visits, interview notes, reflections;
//! - [`children`]: activity responses, card choices, assents;
//! - [`scripts`]: the README and the R and SPSS loaders.

mod children;
mod fieldwork;
mod scripts;
mod table;

use super::{ExportFile, Interview, Study};

pub(crate) fn files(study: &Study<'_>, interviews: &[Interview<'_>]) -> Vec<ExportFile> {
    let tables = vec![
        fieldwork::participants(study),
        fieldwork::consents(study),
        fieldwork::visits(study),
        fieldwork::interview_notes(study, interviews),
        children::activity_responses(study),
        children::card_choices(study),
        children::assents(study),
        fieldwork::reflections(study),
    ];
    let mut files: Vec<ExportFile> = tables
        .iter()
        .map(|t| ExportFile {
            name: t.file.to_owned(),
            bytes: t.csv(),
        })
        .collect();
    files.push(ExportFile {
        name: "codebook.csv".into(),
        bytes: table::codebook(&tables).csv(),
    });
    files.push(ExportFile {
        name: "README.txt".into(),
        bytes: scripts::readme(study, &tables).into_bytes(),
    });
    files.push(ExportFile {
        name: "load_attune.R".into(),
        bytes: scripts::r_script(&tables).into_bytes(),
    });
    files.push(ExportFile {
        name: "load_attune.sps".into(),
        bytes: scripts::spss_syntax(&tables).into_bytes(),
    });
    files.extend(tables.iter().map(|t| ExportFile {
        name: format!("spss/{}", t.file),
        bytes: t.spss_csv(),
    }));
    files
}
