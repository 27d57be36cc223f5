//! What the Python SDK's serializer is made of: its two `json.dumps` configurations, the
//! JavaScript integer bound and Python's float `repr` (shared by the reference formatter and
//! the fast writer).

/// Which of the Python SDK's two `json.dumps` configurations to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// `json.dumps(v)` defaults: `", "` / `": "` separators, non-ASCII escaped as `\uhhhh` (UTF-16 code units).
    Python,
    /// `json.dumps(v, separators=(",", ":"), ensure_ascii=False)`.
    Compact,
}

/// The largest integer JavaScript (and the Python serializer) keeps as a number.
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

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
