//! JSON text exactly as the Python SDK writes it (`json.dumps` with its `EventSerializer`).
//!
//! Two styles matter on the wire:
//! - [`JsonStyle::Python`]: input, output, usage, cost, model parameters, completion start time:
//!   separators `", "` / `": "`, `ensure_ascii=True`.
//! - [`JsonStyle::Compact`]: metadata values (observation and propagated trace metadata):
//!   separators `","` / `":"`, `ensure_ascii=False`.
//!
//! Floats follow Python's `repr` (`1e-05`, `1.0`, `1e+16`), and integers outside ±(2^53−1)
//! become strings like the Python serializer does.

use std::fmt::Write as _;

use serde_json::Value;

/// Which of the Python SDK's two `json.dumps` configurations to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// `json.dumps(v)` defaults: `", "` / `": "` separators, non-ASCII escaped as `\uXXXX`.
    Python,
    /// `json.dumps(v, separators=(",", ":"), ensure_ascii=False)`.
    Compact,
}

/// The largest integer JavaScript (and the Python serializer) keeps as a number.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Serializes `value` as the Python SDK would.
///
/// ```
/// use langfuse_otel::json::{to_python_json, JsonStyle};
/// let v = serde_json::json!({"input": 10, "cost": 0.00001, "name": "é"});
/// assert_eq!(to_python_json(&v, JsonStyle::Python), r#"{"input": 10, "cost": 1e-05, "name": "\u00e9"}"#);
/// assert_eq!(to_python_json(&v, JsonStyle::Compact), r#"{"input":10,"cost":1e-05,"name":"é"}"#);
/// ```
pub fn to_python_json(value: &Value, style: JsonStyle) -> String {
    let mut out = String::new();
    write_value(&mut out, value, style);
    out
}

fn write_value(out: &mut String, value: &Value, style: JsonStyle) {
    let (item_sep, key_sep) = match style {
        JsonStyle::Python => (", ", ": "),
        JsonStyle::Compact => (",", ":"),
    };
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    write_string(out, &u.to_string(), style);
                } else {
                    let _ = write!(out, "{u}");
                }
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    write_string(out, &i.to_string(), style);
                } else {
                    let _ = write!(out, "{i}");
                }
            } else if let Some(f) = n.as_f64() {
                out.push_str(&python_float_repr(f));
            }
        }
        Value::String(s) => write_string(out, s, style),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                write_value(out, item, style);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                write_string(out, k, style);
                out.push_str(key_sep);
                write_value(out, v, style);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str, style: JsonStyle) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if style == JsonStyle::Python && (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for decimal exponents in
/// `-4..16`, otherwise scientific with a signed exponent of at least two digits.
///
/// ```
/// use langfuse_otel::json::python_float_repr;
/// assert_eq!(python_float_repr(1.0), "1.0");
/// assert_eq!(python_float_repr(0.00001), "1e-05");
/// assert_eq!(python_float_repr(1.5e16), "1.5e+16");
/// assert_eq!(python_float_repr(0.0021), "0.0021");
/// ```
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: "d[.ddd]e[-]x".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let mant = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mant}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_follow_python_repr() {
        for (f, want) in [
            (0.2, "0.2"),
            (0.87, "0.87"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (123456789012345.0, "123456789012345.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (100.0, "100.0"),
        ] {
            assert_eq!(python_float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn python_style_escapes_non_ascii_and_uses_spaced_separators() {
        let v = json!({"a": ["é", "😀", "\u{7f}"], "b": null});
        assert_eq!(
            to_python_json(&v, JsonStyle::Python),
            r#"{"a": ["\u00e9", "\ud83d\ude00", "\u007f"], "b": null}"#
        );
    }

    #[test]
    fn compact_style_keeps_unicode_and_has_no_spaces() {
        let v = json!({"a": 1, "b": [1, 2], "c": "é\n"});
        assert_eq!(
            to_python_json(&v, JsonStyle::Compact),
            "{\"a\":1,\"b\":[1,2],\"c\":\"é\\n\"}"
        );
    }

    #[test]
    fn unsafe_integers_become_strings() {
        let v = json!([
            9007199254740991u64,
            9007199254740992u64,
            -9007199254740993i64
        ]);
        assert_eq!(
            to_python_json(&v, JsonStyle::Python),
            r#"[9007199254740991, "9007199254740992", "-9007199254740993"]"#
        );
    }

    #[test]
    fn control_characters_use_short_or_unicode_escapes() {
        let v = json!("\u{1}\t\"\\");
        assert_eq!(to_python_json(&v, JsonStyle::Python), r#""\u0001\t\"\\""#);
    }
}
