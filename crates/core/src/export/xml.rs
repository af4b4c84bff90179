//! Just enough XML writing for the export's files: escaped text and attributes, elements
//! opened and closed in order, indented two spaces per level.

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, and the characters XML 1.0 does not
/// allow (C0 controls other than tab, line feed and carriage return; U+FFFE, U+FFFF) left
/// out, so a stray control character typed on a tablet cannot make the file unreadable.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// An XML document written element by element.
pub(crate) struct Xml {
    out: String,
    open: Vec<&'static str>,
    /// Levels of indentation before the first element (for a fragment).
    base: usize,
}

impl Xml {
    /// A document starting with the XML declaration (UTF-8).
    pub(crate) fn new() -> Self {
        Xml {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"),
            open: Vec::new(),
            base: 0,
        }
    }

    /// A fragment (no declaration) to be put `depth` levels deep with [`Xml::raw`].
    pub(crate) fn fragment(depth: usize) -> Self {
        Xml {
            out: String::new(),
            open: Vec::new(),
            base: depth,
        }
    }

    /// Whether nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Appends already written XML (a finished fragment).
    pub(crate) fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() + self.base {
            self.out.push_str("  ");
        }
    }

    fn start(&mut self, name: &'static str, attributes: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            self.out.push_str(&escape(value));
            self.out.push('"');
        }
    }

    /// Opens `<name a="b">`; close it with [`Xml::close`].
    pub(crate) fn open(&mut self, name: &'static str, attributes: &[(&str, &str)]) -> &mut Self {
        self.start(name, attributes);
        self.out.push_str(">\n");
        self.open.push(name);
        self
    }

    /// Writes `<name a="b"/>`.
    pub(crate) fn empty(&mut self, name: &'static str, attributes: &[(&str, &str)]) -> &mut Self {
        self.start(name, attributes);
        self.out.push_str("/>\n");
        self
    }

    /// Writes `<name a="b">text</name>`; the text is kept exactly (no indentation inside).
    pub(crate) fn text(
        &mut self,
        name: &'static str,
        attributes: &[(&str, &str)],
        text: &str,
    ) -> &mut Self {
        self.start(name, attributes);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
        self
    }

    /// Closes the innermost open element.
    pub(crate) fn close(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.indent();
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push_str(">\n");
        }
        self
    }

    /// The document, with every open element closed.
    pub(crate) fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped_and_forbidden_characters_dropped() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}\u{7}\ttab"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\ttab"
        );
        let mut xml = Xml::new();
        xml.open("A", &[("name", "x\"y")])
            .text("B", &[], "1 < 2")
            .empty("C", &[]);
        let doc = xml.finish();
        assert!(
            doc.ends_with("<A name=\"x&quot;y\">\n  <B>1 &lt; 2</B>\n  <C/>\n</A>\n"),
            "{doc}"
        );
    }
}
