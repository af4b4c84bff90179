//! The export's README and the R and SPSS scripts that load the CSVs with their types and
//! value labels, made from the same table descriptions as the CSVs.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::super::Study;
use super::table::{Table, Type, neutralise, one_line, values_text};

pub(super) fn readme(study: &Study<'_>, tables: &[Table]) -> String {
    let input = study.input;
    let mut out = String::new();
    let _ = writeln!(out, "Attune export: {}", study.protocol.title);
    let _ = writeln!(
        out,
        "Exported at {} (times are UTC).",
        input.exported_at.to_rfc3339()
    );
    let _ = writeln!(
        out,
        "Participants who withdrew are left out of every file: {} withdrawn.\n",
        input.withdrawn_participants
    );
    out.push_str(
        "WHICH FILE IN WHICH TOOL\n\
         - NVivo, ATLAS.ti, MAXQDA, QualCoder: import attune.qdpx (REFI-QDA project). Keep it in\n\
           this folder: its audio sources point at the attachments folder beside it.\n\
         - Any of those, auto-coding by heading: the interviews folder, one .docx per interview\n\
           (questions in Heading 2).\n\
         - ELAN: the elan folder, one .eaf per recorded interview (the audio is linked).\n\
         - R: source(\"load_attune.R\", chdir = TRUE) loads every CSV with its types and factors.\n\
         - SPSS or PSPP: open load_attune.sps, change the CD line to this folder, run all.\n\
         - Spreadsheets: the CSVs are UTF-8. A text cell that would start with = + - @ (or ')\n\
           has a ' put before it so it is never run as a formula; the R and SPSS scripts take\n\
           it away again.\n\
         - records.csv and records.json: every record as recorded (JSON bodies), for audits.\n\
         - manifest.json: the SHA-256 of every file, what was left out and why.\n\n\
         THE CSV FILES (codebook.csv lists every column with its type and values)\n\
         Types: text; integer; boolean (1 = yes, 0 = no); date-time (ISO 8601 in UTC, e.g.\n\
         2026-11-30T14:05:09.123+00:00); code (one of the values listed, with its words).\n\
         An empty cell is a missing value.\n",
    );
    for table in tables {
        let _ = writeln!(
            out,
            "\n{} ({} {})\n  {}",
            table.file,
            table.rows.len(),
            if table.rows.len() == 1 { "row" } else { "rows" },
            table.about
        );
        for column in &table.columns {
            let values = values_text(&column.ty);
            let _ = write!(
                out,
                "  - {} [{}]: {}",
                column.name,
                column.ty.name(),
                column.about
            );
            if !values.is_empty() && matches!(column.ty, Type::Code(_)) {
                let _ = write!(out, " Values: {values}.");
            }
            out.push('\n');
        }
    }
    if !study.unreadable.is_empty() {
        out.push_str(
            "\nRECORDS NOT IN THE TABLES\nThese records could not be read by this version \
             (they are in records.json as recorded):\n",
        );
        for u in &study.unreadable {
            let _ = writeln!(out, "  - {} ({}): {}", u.record_id, u.kind, u.reason);
        }
    }
    out
}

/// An R string literal.
pub(super) fn r_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn r_vector(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| r_string(&s)).collect();
    format!("c({})", items.join(", "))
}

pub(super) fn r_script(tables: &[Table]) -> String {
    let mut out = String::from(
        "# Attune export: loads every CSV of this folder with its types and value labels.\n\
         # In R or RStudio: source(\"load_attune.R\", chdir = TRUE)\n\
         # Each file becomes a data frame of the same name (participants, consents, ...);\n\
         # times are POSIXct in UTC, booleans logical, codes factors labelled in words.\n\n\
         attune_read <- function(file, types, labels = list()) {\n\
         \x20 data <- utils::read.csv(file, fileEncoding = \"UTF-8-BOM\", colClasses = \"character\",\n\
         \x20                         na.strings = \"\", check.names = FALSE, stringsAsFactors = FALSE)\n\
         \x20 for (name in names(types)) {\n\
         \x20   x <- data[[name]]\n\
         \x20   data[[name]] <- switch(types[[name]],\n\
         \x20     text = sub(\"^'\", \"\", x),\n\
         \x20     integer = as.integer(x),\n\
         \x20     boolean = as.logical(as.integer(x)),\n\
         \x20     datetime = as.POSIXct(substr(x, 1, 23), format = \"%Y-%m-%dT%H:%M:%OS\", tz = \"UTC\"),\n\
         \x20     code = {\n\
         \x20       x <- sub(\"^'\", \"\", x)\n\
         \x20       known <- labels[[name]]\n\
         \x20       extra <- setdiff(unique(x[!is.na(x)]), names(known))\n\
         \x20       factor(x, levels = c(names(known), extra), labels = c(unname(known), extra))\n\
         \x20     })\n\
         \x20 }\n\
         \x20 data\n\
         }\n",
    );
    for table in tables {
        let types = table.columns.iter().map(|c| {
            let ty = match c.ty {
                Type::Text => "text",
                Type::Integer => "integer",
                Type::Boolean => "boolean",
                Type::DateTime => "datetime",
                Type::Code(_) => "code",
            };
            format!("{} = {}", r_string(c.name), r_string(ty))
        });
        let labels: Vec<String> = table
            .columns
            .iter()
            .filter_map(|c| match &c.ty {
                Type::Code(pairs) => Some(format!(
                    "{} = stats::setNames({}, {})",
                    r_string(c.name),
                    r_vector(pairs.iter().map(|(_, l)| l.clone())),
                    r_vector(pairs.iter().map(|(code, _)| code.clone())),
                )),
                _ => None,
            })
            .collect();
        let _ = write!(
            out,
            "\n{} <- attune_read({},\n  types = c({}),\n  labels = list({}))\n",
            table.name,
            r_string(table.file),
            types.collect::<Vec<_>>().join(", "),
            labels.join(",\n    "),
        );
    }
    out
}

/// An SPSS string literal.
pub(super) fn spss_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''").replace(['\n', '\r'], " "))
}

pub(super) fn spss_syntax(tables: &[Table]) -> String {
    let mut out = String::from(
        "* Attune export: loads every CSV of this folder into SPSS (or PSPP) with types,\n\
         * variable labels and value labels. Change the folder below, then run all.\n\
         * Times become SPSS date-times in UTC; booleans 1 = yes, 0 = no.\n\
         CD '.'.\n",
    );
    for table in tables {
        spss_table(&mut out, table);
    }
    if let Some(first) = tables.first() {
        let _ = writeln!(out, "\nDATASET ACTIVATE {}.", first.name);
    }
    out
}

/// The syntax that loads one table: GET DATA, the date-times, the leading `'` taken away,
/// variable and value labels, and a named copy of the dataset.
fn spss_table(out: &mut String, table: &Table) {
    // Text widths: the longest value in bytes (SPSS counts bytes in UTF-8 mode).
    let mut widths: HashMap<usize, usize> = HashMap::new();
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate() {
            let width = neutralise(&one_line(cell)).len();
            let entry = widths.entry(i).or_insert(1);
            *entry = (*entry).max(width);
        }
    }
    let variables: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let width = widths.get(&i).copied().unwrap_or(1).clamp(1, 32_767);
            match c.ty {
                Type::Text | Type::Code(_) => format!("{} A{width}", c.name),
                Type::Integer | Type::Boolean => format!("{} F8.0", c.name),
                Type::DateTime => format!("{}_iso A29", c.name),
            }
        })
        .collect();
    let _ = write!(
        out,
        "\nGET DATA /TYPE=TXT /FILE={} /ENCODING='UTF8'\n  /ARRANGEMENT=DELIMITED /DELCASE=LINE /FIRSTCASE=2\n  /DELIMITERS=\",\" /QUALIFIER='\"'\n  /VARIABLES=\n    {}.\n",
        spss_string(&format!("spss/{}", table.file)),
        variables.join("\n    ")
    );
    for c in &table.columns {
        match c.ty {
            Type::DateTime => {
                let _ = write!(
                    out,
                    "COMPUTE {0} = NUMBER(REPLACE(SUBSTR({0}_iso, 1, 19), 'T', ' '), YMDHMS19).\n\
                     FORMATS {0} (DATETIME20).\n",
                    c.name
                );
            }
            Type::Text | Type::Code(_) => {
                let _ = writeln!(
                    out,
                    "IF (SUBSTR({0}, 1, 1) = \"'\") {0} = SUBSTR({0}, 2).",
                    c.name
                );
            }
            _ => {}
        }
    }
    let _ = writeln!(out, "EXECUTE.");
    let dates: Vec<String> = table
        .columns
        .iter()
        .filter(|c| matches!(c.ty, Type::DateTime))
        .map(|c| format!("{}_iso", c.name))
        .collect();
    if !dates.is_empty() {
        let _ = writeln!(out, "DELETE VARIABLES {}.", dates.join(" "));
    }
    let labels: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c.name,
                spss_string(&c.about.chars().take(250).collect::<String>())
            )
        })
        .collect();
    let _ = writeln!(out, "VARIABLE LABELS\n  {}.", labels.join("\n  /"));
    let values: Vec<String> = table
        .columns
        .iter()
        .filter_map(|c| match &c.ty {
            Type::Code(pairs) => Some(format!(
                "{} {}",
                c.name,
                pairs
                    .iter()
                    .map(|(code, label)| format!("{} {}", spss_string(code), spss_string(label)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            Type::Boolean => Some(format!("{} 1 'Yes' 0 'No'", c.name)),
            _ => None,
        })
        .collect();
    if !values.is_empty() {
        let _ = writeln!(out, "VALUE LABELS\n  {}.", values.join("\n  /"));
    }
    // A copy keeps each table open (GET DATA replaces the active dataset).
    let _ = writeln!(out, "DATASET COPY {}.", table.name);
}
