//! Rebuilding one value from indexed attribute keys (server: `convertKeyPathToNestedObject`):
//! `gen_ai.prompt.0.role` + `gen_ai.prompt.0.content` → `[{role, content}]`.

use serde_json::{Map, Value};

use crate::span::Attributes;
use crate::value::AttrValue;

/// Most array slots one rebuild may allocate; keys that would exceed it are dropped.
const MAX_ARRAY_SLOTS: usize = 10_001;

/// Path segments the server refuses to write (prototype pollution guard).
const FORBIDDEN_SEGMENTS: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// The value of all keys of `attrs` starting with `prefix`: the bare key's value when truthy,
/// otherwise an array (when some key is `<prefix>.<n>.…`) or object rebuilt from the paths.
pub(super) fn rebuild(attrs: &Attributes<'_>, prefix: &str) -> Value {
    if let Some(bare) = attrs.truthy(prefix) {
        return bare.to_json();
    }
    let entries: Vec<(&str, &AttrValue<'_>)> = attrs
        .with_prefix(prefix)
        .map(|(k, v)| (strip_first(k, prefix), v))
        .collect();
    let mut budget = MAX_ARRAY_SLOTS;
    let use_array = entries.iter().any(|(k, _)| starts_with_index(k));
    if use_array {
        let mut result: Vec<Value> = Vec::new();
        for (key, value) in entries {
            let mut parts = key.split('.');
            let first = parts.next().unwrap_or_default();
            // `parseInt` of a segment without leading digits is NaN: a property JSON drops.
            let Some(index) = parse_int_prefix(first) else {
                continue;
            };
            if !grow(&mut result, index, &mut budget) {
                continue;
            }
            let rest: Vec<&str> = parts.collect();
            let slot = &mut result[index];
            if !json_truthy_slot(slot) {
                *slot = Value::Object(Map::new());
            }
            if rest.is_empty() {
                // `path[path.length - 1]` of an empty path is the key "undefined".
                set_key(slot, "undefined", value.to_json(), &mut budget);
            } else {
                set_nested(slot, &rest, value.to_json(), &mut budget);
            }
        }
        Value::Array(result)
    } else {
        let mut result = Value::Object(Map::new());
        for (key, value) in entries {
            let parts: Vec<&str> = key.split('.').collect();
            set_nested(&mut result, &parts, value.to_json(), &mut budget);
        }
        result
    }
}

/// `key.replace("<prefix>.", "")`: removes the first occurrence only.
fn strip_first<'k>(key: &'k str, prefix: &str) -> &'k str {
    let mut needle = String::with_capacity(prefix.len() + 1);
    needle.push_str(prefix);
    needle.push('.');
    match key.find(&needle) {
        Some(0) => &key[needle.len()..],
        // A match further in would splice the key; such keys never index, keep them whole.
        _ => key,
    }
}

/// `/^\d+\./`.
fn starts_with_index(key: &str) -> bool {
    let digits = key.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && key.as_bytes().get(digits) == Some(&b'.')
}

/// `parseInt(segment, 10)` for non-negative indices (leading digits only).
fn parse_int_prefix(segment: &str) -> Option<usize> {
    let digits = segment.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    // Indices too large to allocate are over budget anyway.
    segment[..digits].parse::<usize>().ok().or(Some(usize::MAX))
}

/// A canonical array index (`/^\d+$/` and no leading zero), as JavaScript arrays accept.
fn canonical_index(segment: &str) -> Option<usize> {
    if segment.is_empty()
        || !segment.bytes().all(|b| b.is_ascii_digit())
        || (segment.len() > 1 && segment.starts_with('0'))
    {
        return None;
    }
    segment.parse::<usize>().ok().or(Some(usize::MAX))
}

fn is_all_digits(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Makes `index` addressable in `array`, charging new slots to `budget`.
fn grow(array: &mut Vec<Value>, index: usize, budget: &mut usize) -> bool {
    if index < array.len() {
        return true;
    }
    let extra = index - array.len() + 1;
    if extra > *budget {
        return false;
    }
    *budget -= extra;
    array.resize(index + 1, Value::Null);
    true
}

/// Whether an array slot or object member holds something (JavaScript `!x` on objects).
fn json_truthy_slot(v: &Value) -> bool {
    crate::value::json_is_truthy(v)
}

/// `current[key] = value` on an object or array; writes on primitives are ignored.
fn set_key(current: &mut Value, key: &str, value: Value, budget: &mut usize) {
    if FORBIDDEN_SEGMENTS.contains(&key) {
        return;
    }
    match current {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        Value::Array(items) => {
            if let Some(i) = canonical_index(key)
                && grow(items, i, budget)
            {
                items[i] = value;
            }
        }
        _ => {}
    }
}

/// The server's `setNestedValue`: intermediate containers are arrays when the next segment is
/// numeric, objects otherwise; existing members are reused.
fn set_nested(root: &mut Value, path: &[&str], value: Value, budget: &mut usize) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    if path.iter().any(|s| FORBIDDEN_SEGMENTS.contains(s)) {
        return;
    }
    let mut current = root;
    for (i, key) in init.iter().enumerate() {
        let next_is_index = is_all_digits(path[i + 1]);
        let fresh = || {
            if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        };
        current = match current {
            Value::Object(map) => map.entry((*key).to_owned()).or_insert_with(fresh),
            Value::Array(items) => {
                let Some(idx) = canonical_index(key) else {
                    return;
                };
                if !grow(items, idx, budget) {
                    return;
                }
                let slot = &mut items[idx];
                if slot.is_null() {
                    *slot = fresh();
                }
                slot
            }
            _ => return,
        };
    }
    set_key(current, last, value, budget);
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    fn attrs(pairs: &[(&'static str, &'static str)]) -> Attributes<'static> {
        Attributes::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), AttrValue::str(v))),
        )
    }

    #[test]
    fn numeric_segments_become_array_indices() {
        let a = attrs(&[
            ("gen_ai.prompt.0.role", "user"),
            ("gen_ai.prompt.0.content", "hi"),
            ("gen_ai.prompt.1.tool_calls.0.id", "c1"),
        ]);
        assert_eq!(
            rebuild(&a, "gen_ai.prompt"),
            json!([{"role": "user", "content": "hi"}, {"tool_calls": [{"id": "c1"}]}])
        );
    }

    #[test]
    fn non_numeric_segments_become_objects() {
        let a = attrs(&[
            ("gen_ai.completion.content", "x"),
            ("gen_ai.completion.role", "a"),
        ]);
        assert_eq!(
            rebuild(&a, "gen_ai.completion"),
            json!({"content": "x", "role": "a"})
        );
    }

    #[test]
    fn bare_key_wins_when_truthy() {
        let a = attrs(&[("gen_ai.completion", "Hi!"), ("gen_ai.completion.0.x", "y")]);
        assert_eq!(rebuild(&a, "gen_ai.completion"), json!("Hi!"));
    }

    #[test]
    fn no_keys_rebuild_to_an_empty_object() {
        assert_eq!(rebuild(&attrs(&[]), "gen_ai.prompt"), json!({}));
    }

    #[test]
    fn array_slots_are_capped() {
        let a = attrs(&[
            ("gen_ai.prompt.99999999.content", "x"),
            ("gen_ai.prompt.1.content", "y"),
        ]);
        assert_eq!(
            rebuild(&a, "gen_ai.prompt"),
            json!([null, {"content": "y"}])
        );
    }

    #[test]
    fn prototype_segments_are_ignored() {
        let a = attrs(&[("gen_ai.prompt.__proto__.x", "1"), ("gen_ai.prompt.a", "2")]);
        assert_eq!(rebuild(&a, "gen_ai.prompt"), json!({"a": "2"}));
    }
}
