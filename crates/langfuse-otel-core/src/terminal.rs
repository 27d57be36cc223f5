//! Text from traces made safe for a terminal: every control character escaped; and the one
//! tree printer of the tools ([`draw_tree`]).
//!
//! Span names, user ids, metadata and error messages come from the applications that sent
//! them; printed raw, an `ESC` starts a sequence the terminal obeys (set the title, write the
//! clipboard with OSC 52, clear the screen), a `CR` or newline forges a row. Every
//! human-readable output of the tools goes through [`escape_control`]; JSON output needs
//! nothing (serde escapes control characters).
//!
//! | character | shown as |
//! |---|---|
//! | `\n`, `\r`, `\t` | `\n`, `\r`, `\t` |
//! | other C0 controls, `DEL` (`ESC` = U+001B, `BEL` = U+0007, …) | `\u{1b}`, `\u{7}`, … |
//! | C1 controls U+0080–U+009F (8-bit `CSI` = U+009B, …) | `\u{9b}`, … |
//! | bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) | `\u{202e}`, … |
//! | a backslash | `\\` (so an escaped text cannot be mistaken for a literal one) |
//! | anything else | itself |
//!
//! ```
//! use langfuse_otel_core::terminal::escape_control;
//!
//! assert_eq!(escape_control("plain name"), "plain name");
//! assert_eq!(escape_control("\u{1b}]0;pwned\u{7}"), "\\u{1b}]0;pwned\\u{7}");
//! assert_eq!(escape_control("row\nforged"), "row\\nforged");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is shown escaped by [`escape_control`].
pub fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\\' || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character (C0, `DEL`, C1), bidirectional override and backslash
/// escaped, Rust style (`\n`, `\u{1b}`, `\\`); borrowed when nothing needs escaping.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON made safe for a terminal: the control characters JSON leaves raw inside
/// strings (`DEL`, C1 controls, bidirectional overrides) become `\u` escapes of four hex digits, so the text
/// is the same JSON value. (Serializers already escape C0 controls.)
pub fn escape_json_for_terminal(json: String) -> String {
    // C0 controls are escaped inside strings already; outside, they are the layout.
    let raw = |c: char| c >= '\u{7f}' && needs_escape(c);
    if !json.chars().any(raw) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if raw(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Draws rows as an indented tree with box-drawing connectors: each row is `(depth, text)` in
/// pre-order (a row's children follow it, one level deeper; depth 0 is the top level). The one
/// tree printer of the tools (the offline file's trees, `langfuse-bridge traces show`); the
/// text is written as given, so callers escape it first ([`escape_control`]).
///
/// Iterative and linear in the rows: a chain of any depth is drawn without recursion. A row
/// deeper than one level below its predecessor is drawn one level below it.
///
/// ```
/// use langfuse_otel_core::terminal::draw_tree;
///
/// let rows = [(0, "pipeline"), (1, "retrieve"), (1, "answer"), (2, "llm"), (0, "cleanup")];
/// assert_eq!(
///     draw_tree(&rows),
///     "├─ pipeline\n│  ├─ retrieve\n│  └─ answer\n│     └─ llm\n└─ cleanup\n"
/// );
/// ```
pub fn draw_tree<S: AsRef<str>>(rows: &[(usize, S)]) -> String {
    // Depths clamped so that each row is at most one level below the one before.
    let mut depths = Vec::with_capacity(rows.len());
    let mut previous: Option<usize> = None;
    for (depth, _) in rows {
        let d = match previous {
            None => 0,
            Some(p) => (*depth).min(p + 1),
        };
        depths.push(d);
        previous = Some(d);
    }
    // A row is the last of its siblings when no later row has its depth before a shallower one.
    let mut last = vec![false; rows.len()];
    let mut seen_at_depth: Vec<bool> = Vec::new();
    for i in (0..rows.len()).rev() {
        let d = depths[i];
        seen_at_depth.truncate(d + 1);
        seen_at_depth.resize(d + 1, false);
        last[i] = !seen_at_depth[d];
        seen_at_depth[d] = true;
    }
    let mut out = String::new();
    // `open[k]`: the ancestor at depth k has siblings below it (draw its vertical line).
    let mut open: Vec<bool> = Vec::new();
    for (i, (_, text)) in rows.iter().enumerate() {
        let d = depths[i];
        open.truncate(d);
        for &line in &open {
            out.push_str(if line { "│  " } else { "   " });
        }
        out.push_str(if last[i] { "└─ " } else { "├─ " });
        out.push_str(text.as_ref());
        out.push('\n');
        open.push(!last[i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_control_character_survives() {
        let hostile = "a\u{1b}[2J\u{1b}]52;c;aGk=\u{7}\r\n\t\u{0}\u{7f}\u{9b}31m\u{202e}z";
        let escaped = escape_control(hostile);
        assert!(!escaped.chars().any(|c| c.is_control()), "{escaped}");
        assert!(!escaped.contains('\u{202e}'));
        assert_eq!(
            escaped,
            "a\\u{1b}[2J\\u{1b}]52;c;aGk=\\u{7}\\r\\n\\t\\u{0}\\u{7f}\\u{9b}31m\\u{202e}z"
        );
    }

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        let text = "chat ✓ — résumé 日本語";
        assert!(matches!(escape_control(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn json_keeps_its_value_without_raw_controls() {
        let value = serde_json::json!({"name": "a\u{9b}31m\u{7f}\u{202e}\u{1b}\\"});
        let text = escape_json_for_terminal(serde_json::to_string_pretty(&value).unwrap());
        assert!(text.contains('\n'), "the layout stays");
        let raw = |c: char| (c.is_control() && c != '\n') || c == '\u{202e}';
        assert!(!text.chars().any(raw), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }

    #[test]
    fn a_backslash_is_doubled_so_escapes_cannot_be_forged() {
        assert_eq!(escape_control("\\u{1b}"), "\\\\u{1b}");
    }
}
