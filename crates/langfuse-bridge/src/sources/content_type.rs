//! `Content-Type` parsing: the media type's `type/subtype` compared exactly (ASCII
//! case-insensitive), its parameters apart (RFC 9110 §8.3.1). A substring match would take
//! `text/plain;charset=application/json`, which a browser sends cross-site without a CORS
//! preflight, for JSON.

/// The `type/subtype` of a `Content-Type` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// The top-level type (`application`), as written.
    pub kind: &'a str,
    /// The subtype (`json`), as written.
    pub subtype: &'a str,
}

impl<'a> MediaType<'a> {
    /// Parses `type/subtype[;parameters]`; `None` when the value is not of that form (both
    /// parts non-empty tokens, nothing else before the first `;`).
    pub fn parse(value: &'a str) -> Option<MediaType<'a>> {
        let essence = value.split(';').next()?.trim_matches([' ', '\t']);
        let (kind, subtype) = essence.split_once('/')?;
        (is_token(kind) && is_token(subtype)).then_some(MediaType { kind, subtype })
    }

    /// Whether this is `kind/subtype` (ASCII case-insensitive).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// An RFC 9110 token: one or more `tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_subtype_are_compared_exactly_and_parameters_ignored() {
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/Json;charset=UTF-8",
            " application/json ",
        ] {
            assert!(
                MediaType::parse(json).unwrap().is("application", "json"),
                "{json}"
            );
        }
        for not_json in [
            "text/plain;charset=application/json",
            "text/plain; x=\"application/json\"",
            "application/jsonx",
            "application/json-seq",
            "application/x-json",
            "multipart/form-data; boundary=application/json",
        ] {
            let parsed = MediaType::parse(not_json).unwrap();
            assert!(!parsed.is("application", "json"), "{not_json}");
        }
    }

    #[test]
    fn values_that_are_not_a_media_type_do_not_parse() {
        for bad in [
            "",
            "application",
            "/json",
            "application/",
            "application/json/x",
            "application /json",
            "application/json x",
            ";application/json",
        ] {
            assert_eq!(MediaType::parse(bad), None, "{bad:?}");
        }
    }
}

/// The examples of this module's docs, as tests (the module is internal to the crate).
#[cfg(test)]
mod doc_examples {
    #[test]
    fn media_types_compare_type_and_subtype_exactly() {
        use crate::sources::content_type::MediaType;

        let json = MediaType::parse("Application/JSON; charset=utf-8").unwrap();
        assert!(json.is("application", "json"));
        let plain = MediaType::parse("text/plain;charset=application/json").unwrap();
        assert!(!plain.is("application", "json"));
        assert!(MediaType::parse("application/json/x").is_none());
    }
}
