//! A table described once (its file, columns with types and meanings, and rows), written as a
//! CSV, and the codebook of every table.

use super::super::Item;
use crate::time::Timestamp;

/// A column's type, which the R and SPSS scripts read it as.
#[derive(Clone, Debug)]
pub(crate) enum Type {
    /// Free text.
    Text,
    /// A whole number.
    Integer,
    /// `1` (yes) or `0` (no).
    Boolean,
    /// A time, ISO 8601 in UTC, e.g. `2026-11-30T14:05:09.123+00:00`.
    DateTime,
    /// One of a set of codes, each with its words: a factor in R, value labels in SPSS.
    Code(Vec<(String, String)>),
}

impl Type {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Integer => "integer",
            Type::Boolean => "boolean",
            Type::DateTime => "date-time",
            Type::Code(_) => "code",
        }
    }

    pub(super) fn is_text(&self) -> bool {
        matches!(self, Type::Text | Type::Code(_))
    }
}

pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) ty: Type,
    pub(crate) about: &'static str,
}

pub(crate) struct Table {
    pub(crate) file: &'static str,
    /// The R data frame and SPSS dataset name.
    pub(crate) name: &'static str,
    pub(crate) about: &'static str,
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(file: &'static str, name: &'static str, about: &'static str) -> Self {
        Table {
            file,
            name,
            about,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub(super) fn column(
        &mut self,
        name: &'static str,
        ty: Type,
        about: &'static str,
    ) -> &mut Self {
        self.columns.push(Column { name, ty, about });
        self
    }

    pub(super) fn text(&mut self, name: &'static str, about: &'static str) -> &mut Self {
        self.column(name, Type::Text, about)
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "{}", self.file);
        self.rows.push(cells);
    }

    /// The CSV: UTF-8 with a byte order mark (so spreadsheets read it as UTF-8), a header
    /// row, fields quoted where needed, and text that a spreadsheet would run as a formula
    /// neutralised ([`neutralise`]).
    pub(crate) fn csv(&self) -> Vec<u8> {
        self.csv_with(|cell| cell.to_owned())
    }

    /// The CSV for SPSS and PSPP, whose readers end a case at every line break even inside
    /// quotes: the same, with line breaks inside a cell made spaces.
    pub(crate) fn spss_csv(&self) -> Vec<u8> {
        self.csv_with(one_line)
    }

    pub(super) fn csv_with(&self, cell_text: impl Fn(&str) -> String) -> Vec<u8> {
        let mut out = String::from("\u{FEFF}");
        let header: Vec<String> = self.columns.iter().map(|c| quote(c.name)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&self.columns)
                .map(|(cell, column)| {
                    let cell = cell_text(cell);
                    if column.ty.is_text() {
                        quote(&neutralise(&cell))
                    } else {
                        quote(&cell)
                    }
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out.into_bytes()
    }
}

/// `cell` on one line: each line break (CR LF, CR or LF) a space.
pub(super) fn one_line(cell: &str) -> String {
    cell.replace("\r\n", " ").replace(['\r', '\n'], " ")
}

/// A text cell that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`,
/// a tab or a carriage return) gets a leading `'`; so does one that starts with `'`, so the
/// change can always be undone (the R and SPSS scripts remove one leading `'`).
pub(crate) fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote, line break or edge space.
pub(super) fn quote(cell: &str) -> String {
    let needs =
        cell.contains([',', '"', '\n', '\r']) || cell.starts_with(' ') || cell.ends_with(' ');
    if needs {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

pub(super) fn yes(value: bool) -> String {
    if value { "1" } else { "0" }.to_owned()
}

pub(super) fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

pub(super) fn opt_time(t: Option<Timestamp>) -> String {
    t.map(time).unwrap_or_default()
}

pub(super) fn codes(
    pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
) -> Type {
    Type::Code(
        pairs
            .into_iter()
            .map(|(code, label)| (code.into(), label.into()))
            .collect(),
    )
}

/// The columns every table ends with: who recorded the row and whether it verified.
pub(super) fn provenance(table: &mut Table) {
    table
        .text(
            "fieldworker",
            "The fieldworker whose device recorded the row's latest revision.",
        )
        .text("device", "The device (tablet) that recorded it.")
        .column(
            "verified",
            Type::Boolean,
            "Every revision of the record verified (signature, chain, owner); 0: later \
             revisions failed and were left out (see manifest.json, problems).",
        );
}

pub(super) fn provenance_cells<T>(item: &Item<'_, T>) -> [String; 3] {
    [
        item.record.fieldworker.clone(),
        item.record.device.clone(),
        yes(item.record.verified),
    ]
}

pub(super) fn values_text(ty: &Type) -> String {
    match ty {
        Type::Code(pairs) => pairs
            .iter()
            .map(|(code, label)| format!("{code} = {label}"))
            .collect::<Vec<_>>()
            .join("; "),
        Type::Boolean => "1 = yes; 0 = no".to_owned(),
        _ => String::new(),
    }
}

pub(super) fn codebook(tables: &[Table]) -> Table {
    let mut t = Table::new(
        "codebook.csv",
        "codebook",
        "One row per column of every CSV: its type, meaning and values.",
    );
    t.text("file", "The CSV file.")
        .text("column", "The column's name.")
        .text("type", "text, integer, boolean, date-time or code.")
        .text("description", "What the column holds.")
        .text(
            "values",
            "For codes and booleans: each value and its meaning.",
        );
    for table in tables {
        for column in &table.columns {
            t.row(vec![
                table.file.to_owned(),
                column.name.to_owned(),
                column.ty.name().to_owned(),
                column.about.to_owned(),
                values_text(&column.ty),
            ]);
        }
    }
    let own: Vec<(&'static str, &'static str)> =
        t.columns.iter().map(|c| (c.name, c.about)).collect();
    for (name, about) in own {
        t.row(vec![
            "codebook.csv".to_owned(),
            name.to_owned(),
            "text".to_owned(),
            about.to_owned(),
            String::new(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised_and_fields_quoted() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("-1"), "'-1");
        assert_eq!(neutralise("+44"), "'+44");
        assert_eq!(neutralise("@sum"), "'@sum");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("'quoted"), "''quoted", "reversible");
        assert_eq!(neutralise("fine = ok"), "fine = ok");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote("plain"), "plain");
    }
}
