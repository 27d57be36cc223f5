//! The fast path of [`serialize_python`](super::serialize_python): a `serde::Serializer` writing
//! Python-style JSON straight into a `String`.
//!
//! It covers what instrumentation values are made of (strings, numbers, booleans, options,
//! sequences, maps with string keys, structs, enums) and scans strings a word at a time. For
//! anything else (non-string map keys, raw values, errors raised by a `Serialize` impl) it gives
//! up with [`Unsupported`], and the caller serializes again with `serde_json` and
//! [`PythonFormatter`](super::PythonFormatter), the reference this writer reproduces byte for
//! byte.

use std::fmt;

use serde::ser::{self, Serialize};
use serde_json::ser::{CompactFormatter, Formatter as _};

use super::style::{JsonStyle, MAX_SAFE_INTEGER, python_float_repr};

/// The value needs the `serde_json` path (or its `Serialize` impl failed).
#[derive(Debug)]
pub(super) struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unsupported by the fast JSON writer")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

/// Serializer state: the output and the style.
pub(super) struct Writer<'a> {
    out: &'a mut String,
    style: JsonStyle,
    /// Set while at the top level in capture mode: a top-level string is written raw (no quotes,
    /// no escapes) and `captured` is set.
    capture: bool,
    captured: bool,
}

impl<'a> Writer<'a> {
    pub(super) fn new(out: &'a mut String, style: JsonStyle) -> Self {
        Writer {
            out,
            style,
            capture: false,
            captured: false,
        }
    }

    /// A writer that writes a top-level string raw (see [`captured`](Self::captured)).
    pub(super) fn capturing(out: &'a mut String, style: JsonStyle) -> Self {
        Writer {
            capture: true,
            ..Writer::new(out, style)
        }
    }

    /// Whether the value was a top-level string, written raw.
    pub(super) fn captured(&self) -> bool {
        self.captured
    }

    // Pushing characters one by one: a `push_str` of a short text costs a `memcpy` call.
    fn separator(&mut self) {
        self.out.push(',');
        if self.style == JsonStyle::Python {
            self.out.push(' ');
        }
    }

    fn colon(&mut self) {
        self.out.push(':');
        if self.style == JsonStyle::Python {
            self.out.push(' ');
        }
    }

    fn write_u64(&mut self, v: u64) {
        if v > MAX_SAFE_INTEGER {
            self.out.push('"');
            push_decimal(self.out, v);
            self.out.push('"');
        } else {
            push_decimal(self.out, v);
        }
    }

    fn write_i64(&mut self, v: i64) {
        let quoted = v.unsigned_abs() > MAX_SAFE_INTEGER;
        if quoted {
            self.out.push('"');
        }
        if v < 0 {
            self.out.push('-');
        }
        push_decimal(self.out, v.unsigned_abs());
        if quoted {
            self.out.push('"');
        }
    }

    fn write_f64(&mut self, v: f64) {
        if !v.is_finite() {
            self.out.push_str("null");
        } else if (1e-4..1e16).contains(&v.abs()) {
            // The same float writer as `serde_json` (shortest round-trip, fixed notation here).
            let mut buf = [0u8; 40];
            let mut rest: &mut [u8] = &mut buf;
            if CompactFormatter.write_f64(&mut rest, v).is_err() {
                self.out.push_str(&python_float_repr(v));
                return;
            }
            let written = 40 - rest.len();
            // ASCII only: digits, '.', '-'.
            for &b in &buf[..written] {
                self.out.push(char::from(b));
            }
        } else {
            self.out.push_str(&python_float_repr(v));
        }
    }

    fn write_str(&mut self, s: &str) {
        if self.capture {
            self.capture = false;
            self.captured = true;
            self.out.push_str(s);
            return;
        }
        self.out.push('"');
        push_escaped(self.out, s, self.style);
        self.out.push('"');
    }

    /// Leaves the top level: nothing nested is captured.
    fn enter(&mut self) {
        self.capture = false;
    }
}

/// Appends `v` in decimal.
fn push_decimal(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &digit in &buf[i..] {
        out.push(char::from(digit));
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `x` is zero (exact for the word as a whole).
#[inline]
fn has_zero_byte(x: u64) -> bool {
    x.wrapping_sub(ONES) & !x & HIGH != 0
}

/// Whether any of the eight bytes must be escaped: a control character, `"`, `\`, and in the
/// Python style also DEL and anything non-ASCII.
#[inline]
fn word_needs_escape(x: u64, style: JsonStyle) -> bool {
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0;
    let quote = has_zero_byte(x ^ (ONES * u64::from(b'"')));
    let backslash = has_zero_byte(x ^ (ONES * u64::from(b'\\')));
    // b >= 0x80 has its high bit set; b == 0x7f gets it from +1 (a carry out of a byte only
    // comes from 0xff, already detected).
    let high = match style {
        JsonStyle::Python => (x | x.wrapping_add(ONES)) & HIGH != 0,
        JsonStyle::Compact => false,
    };
    control | quote | backslash | high
}

/// Per byte: whether it must be escaped (index 0: Python style, 1: compact style).
static ESCAPED: [[bool; 256]; 2] = {
    let mut table = [[false; 256]; 2];
    let mut b = 0;
    while b < 256 {
        let special = b < 0x20 || b == b'"' as usize || b == b'\\' as usize;
        table[0][b] = special || b >= 0x7f;
        table[1][b] = special;
        b += 1;
    }
    table
};

#[inline]
fn byte_needs_escape(b: u8, style: JsonStyle) -> bool {
    ESCAPED[match style {
        JsonStyle::Python => 0,
        JsonStyle::Compact => 1,
    }][usize::from(b)]
}

#[inline]
fn load_word(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The position of the first byte at or after `from` that must be escaped.
#[inline]
fn next_escape(bytes: &[u8], mut from: usize, style: JsonStyle) -> Option<usize> {
    while let Some(word) = load_word(bytes, from) {
        if word_needs_escape(word, style) {
            break;
        }
        from += 8;
    }
    // Fewer than eight bytes left, or a flagged word: a clean last word (overlapping bytes
    // already checked) settles the tail at once.
    if from < bytes.len()
        && bytes.len() - from < 8
        && bytes
            .len()
            .checked_sub(8)
            .and_then(|at| load_word(bytes, at))
            .is_some_and(|w| !word_needs_escape(w, style))
    {
        return None;
    }
    (from..bytes.len()).find(|&i| byte_needs_escape(bytes[i], style))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_unit_escape(out: &mut String, unit: u16) {
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
    }
}

/// Appends the body of the JSON string for `s` (without quotes), escaped like Python's
/// `json.dumps` in `style`.
fn push_escaped(out: &mut String, s: &str, style: JsonStyle) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start, style) {
        // `i` is at an ASCII byte or (Python style) the first byte of a character: never
        // inside one, because every byte >= 0x7f stops the scan in that style.
        out.push_str(&s[start..i]);
        let b = bytes[i];
        if b < 0x80 {
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                0x08 => out.push_str("\\b"),
                0x0c => out.push_str("\\f"),
                _ => push_unit_escape(out, u16::from(b)),
            }
            start = i + 1;
        } else {
            let c = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut units = [0u16; 2];
            for &unit in c.encode_utf16(&mut units).iter() {
                push_unit_escape(out, unit);
            }
            start = i + c.len_utf8();
        }
    }
    out.push_str(&s[start..]);
}

/// The tokens `serde_json` gives a special meaning (raw values, arbitrary-precision numbers).
fn is_serde_json_token(name: &str) -> bool {
    name.starts_with("$serde_json::private::")
}

impl<'a, 'b> ser::Serializer for &'a mut Writer<'b> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = Compound<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.enter();
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.enter();
        self.write_i64(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unsupported> {
        match i64::try_from(v) {
            Ok(v) => self.serialize_i64(v),
            Err(_) => Err(Unsupported),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.enter();
        self.write_u64(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unsupported> {
        match u64::try_from(v) {
            Ok(v) => self.serialize_u64(v),
            Err(_) => Err(Unsupported),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        self.enter();
        self.write_f64(v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.write_str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsupported> {
        self.enter();
        self.out.push('[');
        for (i, &b) in v.iter().enumerate() {
            if i > 0 {
                self.separator();
            }
            push_decimal(self.out, u64::from(b));
        }
        self.out.push(']');
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.enter();
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        if is_serde_json_token(name) {
            return Err(Unsupported);
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.enter();
        self.out.push('{');
        self.write_str(variant);
        self.colon();
        value.serialize(&mut *self)?;
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, Unsupported> {
        self.enter();
        self.out.push('[');
        Ok(Compound::new(self, "]"))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'b>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, Unsupported> {
        self.enter();
        self.out.push('{');
        self.write_str(variant);
        self.colon();
        self.out.push('[');
        Ok(Compound::new(self, "]}"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, Unsupported> {
        self.enter();
        self.out.push('{');
        Ok(Compound::new(self, "}"))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Unsupported> {
        if is_serde_json_token(name) {
            return Err(Unsupported);
        }
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, Unsupported> {
        self.enter();
        self.out.push('{');
        self.write_str(variant);
        self.colon();
        self.out.push('{');
        Ok(Compound::new(self, "}}"))
    }
}

/// An array, object or variant being written; `close` ends it.
pub(super) struct Compound<'a, 'b> {
    w: &'a mut Writer<'b>,
    first: bool,
    close: &'static str,
}

impl<'a, 'b> Compound<'a, 'b> {
    fn new(w: &'a mut Writer<'b>, close: &'static str) -> Self {
        Compound {
            w,
            first: true,
            close,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        if !std::mem::replace(&mut self.first, false) {
            self.w.separator();
        }
        value.serialize(&mut *self.w)
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        if !std::mem::replace(&mut self.first, false) {
            self.w.separator();
        }
        key.serialize(KeySerializer(&mut *self.w))?;
        self.w.colon();
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        if !std::mem::replace(&mut self.first, false) {
            self.w.separator();
        }
        self.w.write_str(key);
        self.w.colon();
        value.serialize(&mut *self.w)
    }

    fn finish(self) -> Result<(), Unsupported> {
        for c in self.close.chars() {
            self.w.out.push(c);
        }
        Ok(())
    }
}

/// The sequence-like serde traits: every element goes through [`Compound::element`].
macro_rules! sequence_like {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Unsupported;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
                self.element(value)
            }
            fn end(self) -> Result<(), Unsupported> {
                self.finish()
            }
        }
    )*};
}

sequence_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

/// The struct-like serde traits: every field goes through [`Compound::field`].
macro_rules! struct_like {
    ($($trait:ident),* $(,)?) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Unsupported;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Unsupported> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), Unsupported> {
                self.finish()
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

/// Map keys: strings (and what `serde_json` writes as one: chars, unit variants, newtypes of
/// those). Any other key takes the `serde_json` path.
struct KeySerializer<'a, 'b>(&'a mut Writer<'b>);

impl ser::Serializer for KeySerializer<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = ser::Impossible<(), Unsupported>;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = ser::Impossible<(), Unsupported>;
    type SerializeStruct = ser::Impossible<(), Unsupported>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.0.write_str(v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        if is_serde_json_token(name) {
            return Err(Unsupported);
        }
        value.serialize(self)
    }
    fn serialize_bool(self, _v: bool) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i8(self, _v: i8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i16(self, _v: i16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i32(self, _v: i32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i64(self, _v: i64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u8(self, _v: u8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u16(self, _v: u16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u32(self, _v: u32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u64(self, _v: u64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}
