//! Which families of analysis files an export makes.

/// A family of analysis files ([`analysis_files`](super::analysis_files) makes those asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// The tidy CSVs with `codebook.csv`, `README.txt`, `load_attune.R`, `load_attune.sps`
    /// and `spss/` (`csv`).
    Tables,
    /// `attune.qdpx`, the REFI-QDA project (`qdpx`).
    Qdpx,
    /// `interviews/*.docx` (`docx`).
    Documents,
    /// `elan/*.eaf` (`eaf`).
    Elan,
}

impl Format {
    /// Every format, in the order the files are made.
    pub const ALL: [Format; 4] = [
        Format::Tables,
        Format::Qdpx,
        Format::Documents,
        Format::Elan,
    ];

    /// The format's name on the command line: `csv`, `qdpx`, `docx` or `eaf`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tables => "csv",
            Format::Qdpx => "qdpx",
            Format::Documents => "docx",
            Format::Elan => "eaf",
        }
    }

    /// The format named `name` ([`Format::name`]; `elan` too); `None` for another word.
    pub fn parse(name: &str) -> Option<Format> {
        let name = name.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .or_else(|| (name == "elan").then_some(Format::Elan))
    }
}
