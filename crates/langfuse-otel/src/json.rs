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

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io;

use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter};

mod style;
mod writer;

use self::style::MAX_SAFE_INTEGER;
pub use self::style::{JsonStyle, python_float_repr};

/// Serializes `value` as the Python SDK would.
///
/// ```
/// use langfuse_otel::json::{to_python_json, JsonStyle};
/// let v = serde_json::json!({"input": 10, "cost": 0.00001, "name": "é"});
/// assert_eq!(to_python_json(&v, JsonStyle::Python), r#"{"input": 10, "cost": 1e-05, "name": "\u00e9"}"#);
/// assert_eq!(to_python_json(&v, JsonStyle::Compact), r#"{"input":10,"cost":1e-05,"name":"é"}"#);
/// ```
pub fn to_python_json(value: &Value, style: JsonStyle) -> String {
    serialize_python(value, style).unwrap_or_default()
}

/// Serializes any `Serialize` straight to Python-style JSON text (no intermediate
/// [`Value`]). Non-finite floats become `null`.
///
/// ```
/// use langfuse_otel::json::{serialize_python, JsonStyle};
/// #[derive(serde::Serialize)]
/// struct Usage { input: u32, output: u32 }
/// assert_eq!(serialize_python(&Usage { input: 10, output: 5 }, JsonStyle::Python).unwrap(), r#"{"input": 10, "output": 5}"#);
/// ```
pub fn serialize_python<T: serde::Serialize + ?Sized>(
    value: &T,
    style: JsonStyle,
) -> Result<String, serde_json::Error> {
    let fast = with_scratch(|buf| {
        value
            .serialize(&mut writer::Writer::new(buf, style))
            .ok()
            .map(|()| buf.as_str().to_owned())
    });
    match fast {
        Some(text) => Ok(text),
        None => serialize_with_serde_json(value, style),
    }
}

/// Python-style JSON for a value sent as an attribute, unless it is a string: `Ok((text, true))`
/// holds a top-level string itself (no quotes, no escapes), `Ok((json, false))` anything else.
pub(crate) fn serialize_python_or_raw_string<T: serde::Serialize + ?Sized>(
    value: &T,
    style: JsonStyle,
) -> Result<(String, bool), serde_json::Error> {
    let fast = with_scratch(|buf| {
        let mut w = writer::Writer::capturing(buf, style);
        value.serialize(&mut w).ok()?;
        let raw = w.captured();
        Some((buf.as_str().to_owned(), raw))
    });
    match fast {
        Some(done) => Ok(done),
        None => serialize_with_serde_json(value, style).map(|text| (text, false)),
    }
}

/// Runs `f` with an empty buffer reused across calls on this thread: the text is then copied
/// out at its exact size, which costs less than growing a fresh buffer and shrinking it when
/// it becomes an attribute value.
fn with_scratch<R>(f: impl FnOnce(&mut String) -> R) -> R {
    /// A buffer grown past this is not kept.
    const MAX_KEPT: usize = 64 * 1024;
    thread_local! {
        static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let out = f(&mut buf);
            if buf.capacity() > MAX_KEPT {
                *buf = String::new();
            }
            out
        }
        // A `Serialize` impl serializing through this module again.
        Err(_) => f(&mut String::new()),
    })
}

/// The reference implementation: `serde_json` with [`PythonFormatter`]. Used for what the fast
/// writer does not cover.
fn serialize_with_serde_json<T: serde::Serialize + ?Sized>(
    value: &T,
    style: JsonStyle,
) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter(style));
    value.serialize(&mut ser)?;
    // The formatter only writes UTF-8 (fragments of `str`s and ASCII).
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Whether any byte is `>= 0x7f` (DEL or non-ASCII), eight bytes at a time.
fn has_byte_at_least_7f(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte b >= 0x80 has its high bit set; b == 0x7f gets it from +1. A carry out of a
        // byte only comes from 0xff, which is already detected.
        if (x | x.wrapping_add(ONES)) & HIGH != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b >= 0x7f)
}

/// A `serde_json` formatter reproducing Python's `json.dumps` output.
struct PythonFormatter(JsonStyle);

impl PythonFormatter {
    /// Integers outside ±(2^53−1) are written as JSON strings, like the Python serializer.
    fn write_unsafe_int<W: io::Write + ?Sized>(
        writer: &mut W,
        text: impl std::fmt::Display,
    ) -> io::Result<()> {
        write!(writer, "\"{text}\"")
    }
}

impl Formatter for PythonFormatter {
    fn write_i64<W: io::Write + ?Sized>(&mut self, w: &mut W, v: i64) -> io::Result<()> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            Self::write_unsafe_int(w, v)
        } else {
            CompactFormatter.write_i64(w, v)
        }
    }
    fn write_u64<W: io::Write + ?Sized>(&mut self, w: &mut W, v: u64) -> io::Result<()> {
        if v > MAX_SAFE_INTEGER {
            Self::write_unsafe_int(w, v)
        } else {
            CompactFormatter.write_u64(w, v)
        }
    }
    fn write_i128<W: io::Write + ?Sized>(&mut self, w: &mut W, v: i128) -> io::Result<()> {
        if v.unsigned_abs() > u128::from(MAX_SAFE_INTEGER) {
            Self::write_unsafe_int(w, v)
        } else {
            CompactFormatter.write_i128(w, v)
        }
    }
    fn write_u128<W: io::Write + ?Sized>(&mut self, w: &mut W, v: u128) -> io::Result<()> {
        if v > u128::from(MAX_SAFE_INTEGER) {
            Self::write_unsafe_int(w, v)
        } else {
            CompactFormatter.write_u128(w, v)
        }
    }
    fn write_f32<W: io::Write + ?Sized>(&mut self, w: &mut W, v: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(v))
    }
    fn write_f64<W: io::Write + ?Sized>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        // Fast paths: Rust's `Display` is the shortest round-trip text in fixed notation, which
        // is Python's `repr` for magnitudes in [1e-4, 1e16).
        let abs = v.abs();
        if v.is_finite() && (1e-4..1e16).contains(&abs) {
            // `ryu` (serde_json's float writer) also uses fixed notation in this range.
            CompactFormatter.write_f64(w, v)
        } else {
            w.write_all(python_float_repr(v).as_bytes())
        }
    }
    fn write_string_fragment<W: io::Write + ?Sized>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if self.0 == JsonStyle::Compact || !has_byte_at_least_7f(fragment.as_bytes()) {
            return w.write_all(fragment.as_bytes());
        }
        let mut buf = String::with_capacity(fragment.len() + 16);
        for c in fragment.chars() {
            if (c as u32) > 0x7e {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(buf, "\\u{:04x}", unit);
                }
            } else {
                buf.push(c);
            }
        }
        w.write_all(buf.as_bytes())
    }
    fn begin_array_value<W: io::Write + ?Sized>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        match (first, self.0) {
            (true, _) => Ok(()),
            (false, JsonStyle::Python) => w.write_all(b", "),
            (false, JsonStyle::Compact) => w.write_all(b","),
        }
    }
    fn begin_object_key<W: io::Write + ?Sized>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.begin_array_value(w, first)
    }
    fn begin_object_value<W: io::Write + ?Sized>(&mut self, w: &mut W) -> io::Result<()> {
        match self.0 {
            JsonStyle::Python => w.write_all(b": "),
            JsonStyle::Compact => w.write_all(b":"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A deterministic xorshift generator for the writer/reference comparisons.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                "a",
                "Z",
                " ",
                "\"",
                "\\",
                "/",
                "\n",
                "\r",
                "\t",
                "\u{8}",
                "\u{c}",
                "\u{0}",
                "\u{1f}",
                "\u{7f}",
                "~",
                "é",
                "€",
                "😀",
                "\u{80}",
                "\u{ffff}",
                "abcdefgh",
                "0123456789abcdef",
                "<x>",
                "'",
            ];
            (0..self.below(24))
                .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
                .collect()
        }
        fn number(&mut self) -> Value {
            match self.below(6) {
                0 => json!(self.next() >> self.below(64)),
                1 => json!(-((self.next() >> (1 + self.below(63))) as i64)),
                2 => json!(f64::from_bits(self.next())),
                3 => json!((self.next() >> 11) as f64 * 10f64.powi(self.below(60) as i32 - 30)),
                4 => json!(self.below(1000) as f64 / 8.0),
                _ => json!(MAX_SAFE_INTEGER + self.below(3) - 1),
            }
        }
        fn value(&mut self, depth: u32) -> Value {
            match self.below(if depth > 3 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => self.number(),
                3 | 4 => Value::String(self.string()),
                5 => Value::Array((0..self.below(5)).map(|_| self.value(depth + 1)).collect()),
                _ => Value::Object(
                    (0..self.below(5))
                        .map(|_| (self.string(), self.value(depth + 1)))
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn the_fast_writer_matches_the_serde_json_reference() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let v = rng.value(0);
            for style in [JsonStyle::Python, JsonStyle::Compact] {
                let want = serialize_with_serde_json(&v, style).unwrap();
                let mut fast = String::new();
                serde::Serialize::serialize(&v, &mut writer::Writer::new(&mut fast, style))
                    .unwrap();
                assert_eq!(fast, want, "{v:?}");
                let (text, raw) = serialize_python_or_raw_string(&v, style).unwrap();
                match &v {
                    Value::String(s) => assert_eq!((text.as_str(), raw), (s.as_str(), true)),
                    _ => assert_eq!((text, raw), (want, false), "{v:?}"),
                }
            }
        }
    }

    #[test]
    fn the_fast_writer_matches_the_reference_on_the_serde_data_model() {
        use std::collections::BTreeMap;

        #[derive(serde::Serialize)]
        struct Unit;
        #[derive(serde::Serialize)]
        struct Newtype(&'static str);
        #[derive(serde::Serialize)]
        struct Tuple(u8, char);
        #[derive(serde::Serialize)]
        enum E {
            Unit,
            Newtype(i32),
            Tuple(u8, f32),
            Struct { a: Option<u8>, b: () },
        }
        #[derive(serde::Serialize)]
        struct All {
            unit: Unit,
            newtype: Newtype,
            tuple: Tuple,
            variants: Vec<E>,
            bytes: serde_bytes_like::Bytes,
            i128: (i128, i128, u128, u128),
            small: (i8, i16, i32, u8, u16, u32, f32, f32),
            chars: (char, char, char),
            int_keys: BTreeMap<i64, u8>,
            bool_keys: BTreeMap<bool, u8>,
            char_keys: BTreeMap<char, u8>,
            unit_keys: BTreeMap<KeyEnum, u8>,
            big: (u64, i64),
            empty: (Vec<u8>, BTreeMap<String, u8>, ()),
        }
        #[derive(serde::Serialize, PartialEq, Eq, PartialOrd, Ord)]
        enum KeyEnum {
            Alpha,
        }
        mod serde_bytes_like {
            pub struct Bytes(pub &'static [u8]);
            impl serde::Serialize for Bytes {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_bytes(self.0)
                }
            }
        }
        let all = All {
            unit: Unit,
            newtype: Newtype("é\n"),
            tuple: Tuple(7, '"'),
            variants: vec![
                E::Unit,
                E::Newtype(-3),
                E::Tuple(1, 0.1),
                E::Struct { a: None, b: () },
            ],
            bytes: serde_bytes_like::Bytes(&[0, 1, 255]),
            i128: (-5, i128::MIN, 9_007_199_254_740_993, u128::MAX),
            small: (
                -8,
                300,
                -70_000,
                255,
                65_535,
                4_000_000_000,
                f32::NAN,
                1.5e-7,
            ),
            chars: ('a', '€', '\u{1}'),
            int_keys: BTreeMap::from([(-1, 1), (9_007_199_254_740_993, 2)]),
            bool_keys: BTreeMap::from([(true, 1)]),
            char_keys: BTreeMap::from([('k', 1)]),
            unit_keys: BTreeMap::from([(KeyEnum::Alpha, 1)]),
            big: (u64::MAX, i64::MIN),
            empty: (vec![], BTreeMap::new(), ()),
        };
        for style in [JsonStyle::Python, JsonStyle::Compact] {
            let want = serialize_with_serde_json(&all, style).unwrap();
            assert_eq!(serialize_python(&all, style).unwrap(), want);
            // The parts without fallback take the fast path and still match.
            let parts = (&all.unit, &all.newtype, &all.tuple, &all.variants, &all.big);
            let want = serialize_with_serde_json(&parts, style).unwrap();
            let mut out = String::new();
            serde::Serialize::serialize(&parts, &mut writer::Writer::new(&mut out, style)).unwrap();
            assert_eq!(out, want);
        }
        for top in [json!("x"), json!('c'), json!(null)] {
            let got = serialize_python_or_raw_string(&top, JsonStyle::Python).unwrap();
            assert_eq!(got.1, top.is_string());
        }
        let (text, raw) = serialize_python_or_raw_string(&E::Unit, JsonStyle::Python).unwrap();
        assert_eq!((text.as_str(), raw), ("Unit", true));
        let (text, raw) = serialize_python_or_raw_string(&u64::MAX, JsonStyle::Python).unwrap();
        assert_eq!((text.as_str(), raw), ("\"18446744073709551615\"", false));
    }

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
    fn serializer_floats_match_python_repr_across_magnitudes() {
        let mut x = 1.234_567_890_123e-9_f64;
        while x < 1e20 {
            for v in [x, -x, x.round(), 1.0 / x] {
                let got = serialize_python(&v, JsonStyle::Python).unwrap();
                assert_eq!(got, python_float_repr(v), "{v:e}");
            }
            x *= 3.7;
        }
    }

    #[test]
    fn the_word_scan_finds_del_and_non_ascii_anywhere() {
        for len in 0..20 {
            let base = vec![b'a'; len];
            assert!(!has_byte_at_least_7f(&base));
            for i in 0..len {
                for b in [0x7e_u8, 0x7f, 0x80, 0xc3, 0xff] {
                    let mut v = base.clone();
                    v[i] = b;
                    assert_eq!(
                        has_byte_at_least_7f(&v),
                        b >= 0x7f,
                        "len {len} at {i} byte {b:#x}"
                    );
                }
            }
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
