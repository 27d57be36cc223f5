//! Attribute values as the Langfuse server sees them, and the JavaScript-compatible
//! JSON rendering the server applies to them.
//!
//! The Langfuse server is written in TypeScript: every OTLP `AnyValue` is first turned into a
//! plain JavaScript value (string, number, boolean or array), and later stages test those values
//! for JavaScript *truthiness* and render them with `JSON.stringify` / `String(value)`. To produce
//! byte-identical records we model the same value space here ([`AttrValue`]) and render numbers
//! the way ECMAScript does (`3.0` is `"3"`, `2^63` is `"9223372036854776000"`).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// An OTLP attribute value after the Langfuse server's conversion to a plain JavaScript value.
///
/// * `stringValue` → [`AttrValue::Str`]
/// * `doubleValue` / `intValue` → [`AttrValue::Number`] (64-bit integers lose precision beyond
///   2^53 exactly like a JavaScript `Number`); a JSON string double such as `"NaN"` stays a string
/// * `boolValue` → [`AttrValue::Bool`]
/// * `arrayValue` → [`AttrValue::Array`]
/// * anything else (`kvlistValue`, `bytesValue`, an empty value) → [`AttrValue::Str`] holding the
///   `JSON.stringify` text of the whole `AnyValue` wrapper, e.g. `{"bytesValue":"3q2+7w=="}`.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// A number (IEEE-754 double, as in JavaScript).
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// An array of converted values.
    Array(Vec<AttrValue<'a>>),
}

impl<'a> AttrValue<'a> {
    /// A borrowed string value.
    pub fn str(s: &'a str) -> Self {
        AttrValue::Str(Cow::Borrowed(s))
    }

    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// JavaScript truthiness: `""`, `0`, `NaN` and `false` are falsy; everything else, including
    /// empty arrays, is truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            AttrValue::Str(s) => !s.is_empty(),
            AttrValue::Number(n) => *n != 0.0 && !n.is_nan(),
            AttrValue::Bool(b) => *b,
            AttrValue::Array(_) => true,
        }
    }

    /// The server's "meaningful value" test: not `""`, not an empty array.
    pub fn is_meaningful(&self) -> bool {
        match self {
            AttrValue::Str(s) => !s.is_empty(),
            AttrValue::Array(items) => !items.is_empty(),
            AttrValue::Number(_) | AttrValue::Bool(_) => true,
        }
    }

    /// `String(value)` in JavaScript: strings as they are, numbers in ECMAScript form, arrays
    /// joined with `,`.
    pub fn to_js_string(&self) -> Cow<'_, str> {
        match self {
            AttrValue::Str(s) => Cow::Borrowed(s),
            AttrValue::Number(n) => Cow::Owned(js_number_to_string(*n)),
            AttrValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            AttrValue::Array(items) => {
                let mut out = String::new();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&item.to_js_string());
                }
                Cow::Owned(out)
            }
        }
    }

    /// The string itself for strings, `JSON.stringify(value)` for everything else. This is how
    /// the server renders non-string values wherever it needs a string (metadata attributes,
    /// model names, …).
    pub fn to_json_string(&self) -> Cow<'_, str> {
        match self {
            AttrValue::Str(s) => Cow::Borrowed(s),
            other => {
                let mut out = String::new();
                write_attr_json(&mut out, other);
                Cow::Owned(out)
            }
        }
    }

    /// The value as a JSON value (numbers as in [`js_number`]).
    pub fn to_json(&self) -> Value {
        match self {
            AttrValue::Str(s) => Value::String(s.to_string()),
            AttrValue::Number(n) => js_number(*n),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Array(items) => Value::Array(items.iter().map(AttrValue::to_json).collect()),
        }
    }

    /// `Number(value)` in JavaScript, for strings, numbers and booleans (`None` when the result
    /// would be `NaN` or the value is an array).
    pub fn to_js_number(&self) -> Option<f64> {
        let n = match self {
            AttrValue::Number(n) => *n,
            AttrValue::Bool(b) => f64::from(u8::from(*b)),
            AttrValue::Str(s) => js_string_to_number(s)?,
            AttrValue::Array(_) => return None,
        };
        (!n.is_nan()).then_some(n)
    }

    /// Converts into an owned value (`'static`).
    pub fn into_owned(self) -> AttrValue<'static> {
        match self {
            AttrValue::Str(s) => AttrValue::Str(Cow::Owned(s.into_owned())),
            AttrValue::Number(n) => AttrValue::Number(n),
            AttrValue::Bool(b) => AttrValue::Bool(b),
            AttrValue::Array(items) => {
                AttrValue::Array(items.into_iter().map(AttrValue::into_owned).collect())
            }
        }
    }
}

/// A JSON number for a JavaScript number: integral values that fit `i64` exactly become JSON
/// integers, other finite values doubles; non-finite values (which JSON cannot carry) become
/// `null`, as `JSON.stringify` does.
pub fn js_number(n: f64) -> Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.223_372_036_854_776e18 {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// `Number(string)` in JavaScript: surrounding white space ignored, empty string is `0`,
/// decimal, exponent and `0x`/`0o`/`0b` forms and `Infinity` accepted; otherwise `None` (NaN).
pub fn js_string_to_number(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return Some(0.0);
    }
    let (radix, digits) = match t.get(..2) {
        Some("0x" | "0X") => (16, &t[2..]),
        Some("0o" | "0O") => (8, &t[2..]),
        Some("0b" | "0B") => (2, &t[2..]),
        _ => (10, t),
    };
    if radix != 10 {
        if digits.is_empty() {
            return None;
        }
        let mut acc = 0f64;
        for c in digits.chars() {
            acc = acc * f64::from(radix) + f64::from(c.to_digit(radix)?);
        }
        return Some(acc);
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return Some(if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Rust's parser accepts "inf", "nan" and "infinity"; JavaScript does not.
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || unsigned
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// `String(number)` in JavaScript (ECMAScript `Number::toString`).
pub fn js_number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    // Integers below 2^53 print as themselves: the common case (token counts, ids).
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        return (n as i64).to_string();
    }
    // Shortest round-trip digits, as "d.ddde±x".
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let e: i32 = exp.parse().unwrap_or(0);
    let point = e + 1; // position of the decimal point relative to the digits
    let mut out = String::with_capacity(24);
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if point > 0 { '+' } else { '-' });
        out.push_str(&(point - 1).abs().to_string());
    }
    out
}

/// `JSON.stringify(value)` for a JSON value: compact, keys in insertion order, numbers in
/// ECMAScript form (`1.0` is `1`), strings escaped as JavaScript does.
pub fn js_json_stringify(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_json_number(out, n),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_json_object(out, map),
    }
}

fn write_json_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, k);
        out.push(':');
        write_json(out, v);
    }
    out.push('}');
}

fn write_json_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        // Integers beyond 2^53 are still printed the JavaScript way (rounded to a double).
        if i.unsigned_abs() <= 1 << 53 {
            out.push_str(&i.to_string());
            return;
        }
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => out.push_str(&js_number_to_string(f)),
        _ => out.push_str("null"),
    }
}

fn write_attr_json(out: &mut String, value: &AttrValue<'_>) {
    match value {
        AttrValue::Str(s) => write_json_string(out, s),
        AttrValue::Number(n) if n.is_finite() => out.push_str(&js_number_to_string(*n)),
        AttrValue::Number(_) => out.push_str("null"),
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttrValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_attr_json(out, item);
            }
            out.push(']');
        }
    }
}

/// Appends `s` as a JSON string literal, escaped exactly like JavaScript's `JSON.stringify`.
pub fn write_json_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// JavaScript truthiness of a JSON value.
pub fn json_is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The server's "meaningful value" test on a JSON value: not null, `""`, `[]` or `{}`.
pub fn json_is_meaningful(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// `JSON.parse(text)`: `None` for text that is not JSON.
pub fn json_parse(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_render_like_ecmascript() {
        let cases: &[(f64, &str)] = &[
            (3.0, "3"),
            (0.75, "0.75"),
            (-1.5, "-1.5"),
            (9_223_372_036_854_775_807.0, "9223372036854776000"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123456789.125, "123456789.125"),
            (f64::NAN, "NaN"),
        ];
        for (n, want) in cases {
            assert_eq!(js_number_to_string(*n), *want, "{n}");
        }
    }

    #[test]
    fn number_parsing_follows_javascript() {
        assert_eq!(js_string_to_number(" 42 "), Some(42.0));
        assert_eq!(js_string_to_number(""), Some(0.0));
        assert_eq!(js_string_to_number("0x10"), Some(16.0));
        assert_eq!(js_string_to_number("1e3"), Some(1000.0));
        assert_eq!(js_string_to_number("inf"), None);
        assert_eq!(js_string_to_number("12abc"), None);
        assert_eq!(js_string_to_number("-Infinity"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn stringify_matches_javascript() {
        let v: Value = serde_json::from_str(r#"{"b":1.0,"a":[1.5,"x\u0001",true,null]}"#).unwrap();
        assert_eq!(
            js_json_stringify(&v),
            r#"{"b":1,"a":[1.5,"x\u0001",true,null]}"#
        );
    }

    #[test]
    fn truthiness_follows_javascript() {
        assert!(!AttrValue::str("").is_truthy());
        assert!(AttrValue::Array(vec![]).is_truthy());
        assert!(!AttrValue::Array(vec![]).is_meaningful());
        assert!(!AttrValue::Number(0.0).is_truthy());
        assert!(AttrValue::Bool(false).is_meaningful());
    }
}
