//! Tool definitions moved from metadata into the input (server:
//! `normalizeToolMetadataForObservation`).

use serde_json::{Map, Value};

use crate::record::Metadata;
use crate::value::{js_json_stringify, json_is_truthy, json_parse};

const AI_PROMPT_TOOLS: &str = "ai.prompt.tools";
const GEN_AI_TOOL_DEFINITIONS: &str = "gen_ai.tool.definitions";
const MODEL_REQUEST_PARAMETERS: &str = "model_request_parameters";
const FUNCTION_TOOLS: &str = "function_tools";

/// `parseIfString`: JSON text parsed when it is JSON, anything else as it is.
fn parse_if_string(v: &Value) -> Value {
    match v {
        Value::String(s) => json_parse(s).unwrap_or_else(|| v.clone()),
        other => other.clone(),
    }
}

/// `parseArrayIfString`: an array, or JSON text of one.
fn parse_array_if_string(v: Option<&Value>) -> Option<Vec<Value>> {
    match v? {
        Value::Array(items) => Some(items.clone()),
        Value::String(s) => match json_parse(s) {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        },
        _ => None,
    }
}

/// The name of a tool definition, flat (`{name}`) or nested (`{function: {name}}`).
fn tool_name(tool: &Value) -> Option<Value> {
    let parsed;
    let tool = match tool {
        Value::String(s) => {
            parsed = json_parse(s)?;
            &parsed
        }
        other => other,
    };
    let Value::Object(t) = tool else {
        return None;
    };
    let data = match t.get("function") {
        None | Some(Value::Null) => tool,
        Some(f) => f,
    };
    match data {
        Value::Object(d) => d.get("name").filter(|n| json_is_truthy(n)).cloned(),
        _ => None,
    }
}

fn is_tool_entry_like(tool: &Value, allow_provider_without_name: bool) -> bool {
    let parsed = parse_if_string(tool);
    let Value::Object(obj) = &parsed else {
        return false;
    };
    tool_name(&parsed).is_some()
        || (allow_provider_without_name && matches!(obj.get("type"), Some(Value::String(_))))
}

/// `parseToolDefinitionArray`: the tool-like entries, `Some(vec![])` for an empty array.
fn parse_tool_array(
    tools: Option<&Value>,
    require_every_item: bool,
    allow_provider_without_name: bool,
) -> Option<Vec<Value>> {
    let items = parse_array_if_string(tools)?;
    if items.is_empty() {
        return Some(Vec::new());
    }
    let total = items.len();
    let like: Vec<Value> = items
        .iter()
        .map(parse_if_string)
        .filter(|t| is_tool_entry_like(t, allow_provider_without_name))
        .collect();
    if require_every_item && like.len() != total {
        return None;
    }
    (!like.is_empty()).then_some(like)
}

/// Keeps the first definition of each name; nameless entries are all kept.
fn dedupe(tools: Vec<Value>) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    tools
        .into_iter()
        .filter(|t| match tool_name(t) {
            None => true,
            Some(name) if seen.contains(&name) => false,
            Some(name) => {
                seen.push(name);
                true
            }
        })
        .collect()
}

/// `llm.tools.<n>.tool.json_schema` → n.
fn indexed_tool_key(key: &str) -> Option<u64> {
    let n = key
        .strip_prefix("llm.tools.")?
        .strip_suffix(".tool.json_schema")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(n.parse::<u64>().unwrap_or(u64::MAX))
}

/// Tools found in the metadata, and the edits that remove them (applied only when the input
/// takes the tools).
#[derive(Default)]
struct Collected {
    tools: Vec<Value>,
    drop_user_tools: bool,
    /// Attribute keys to remove.
    remove: Vec<String>,
    /// New `model_request_parameters` value (its other members), if it is rewritten.
    model_request_parameters: Option<Value>,
}

/// Whether an attribute key may hold tool definitions (cheap pre-check for the hot path).
fn is_tool_attribute(key: &str) -> bool {
    key == AI_PROMPT_TOOLS
        || key == GEN_AI_TOOL_DEFINITIONS
        || key == MODEL_REQUEST_PARAMETERS
        || indexed_tool_key(key).is_some()
}

fn collect(metadata: &Metadata) -> Collected {
    let mut out = Collected::default();
    if let Some(found) = parse_tool_array(metadata.user.get("tools"), true, false)
        && !found.is_empty()
    {
        out.tools.extend(found);
        out.drop_user_tools = true;
    }
    let Some(attrs) = &metadata.attributes else {
        out.tools = dedupe(out.tools);
        return out;
    };
    if !attrs.keys().any(|k| is_tool_attribute(k)) {
        out.tools = dedupe(out.tools);
        return out;
    }
    for (key, allow_provider) in [(AI_PROMPT_TOOLS, true), (GEN_AI_TOOL_DEFINITIONS, false)] {
        if let Some(found) = parse_tool_array(attrs.get(key), true, allow_provider) {
            out.tools.extend(found);
            out.remove.push(key.to_owned());
        }
    }
    if let Some(original) = attrs.get(MODEL_REQUEST_PARAMETERS)
        && let Value::Object(mut params) = parse_if_string(original)
    {
        if let Some(found) = parse_tool_array(params.get(FUNCTION_TOOLS), true, false) {
            out.tools.extend(found);
            params.shift_remove(FUNCTION_TOOLS);
        }
        if params.is_empty() {
            out.remove.push(MODEL_REQUEST_PARAMETERS.to_owned());
        } else {
            let params = Value::Object(params);
            out.model_request_parameters = Some(if original.is_string() {
                Value::String(js_json_stringify(&params))
            } else {
                params
            });
        }
    }
    let mut indexed: Vec<(u64, &String)> = attrs
        .keys()
        .filter_map(|k| indexed_tool_key(k).map(|n| (n, k)))
        .collect();
    indexed.sort_by_key(|(n, _)| *n);
    for (_, key) in indexed {
        let parsed = parse_if_string(&attrs[key.as_str()]);
        if is_tool_entry_like(&parsed, false) {
            out.tools.push(parsed);
            out.remove.push(key.clone());
        }
    }
    out.tools = dedupe(out.tools);
    out
}

/// The input with `tools` merged in, or `None` when the input's shape does not take them.
fn merge_into(value: Option<Value>, tools: &[Value]) -> Option<Value> {
    let tools_value = || Value::Array(tools.to_vec());
    match value {
        Some(Value::Array(messages)) => {
            let mut m = Map::new();
            m.insert("messages".into(), Value::Array(messages));
            m.insert("tools".into(), tools_value());
            Some(Value::Object(m))
        }
        Some(Value::Object(mut obj)) => {
            let merged = match obj.get("tools") {
                None | Some(Value::Null) => tools_value(),
                Some(existing) => {
                    let mut all = parse_tool_array(Some(existing), false, true)?;
                    all.extend_from_slice(tools);
                    Value::Array(dedupe(all))
                }
            };
            obj.insert("tools".into(), merged);
            Some(Value::Object(obj))
        }
        None | Some(Value::Null) => {
            let mut m = Map::new();
            m.insert("tools".into(), tools_value());
            Some(Value::Object(m))
        }
        Some(Value::String(s)) => {
            let mut m = Map::new();
            m.insert("prompt".into(), Value::String(s));
            m.insert("tools".into(), tools_value());
            Some(Value::Object(m))
        }
        Some(Value::Bool(_) | Value::Number(_)) => None,
    }
}

/// See [`super::move_tool_definitions`].
pub(super) fn move_tool_definitions(metadata: &mut Metadata, input: &mut Option<Option<Value>>) {
    let collected = collect(metadata);
    if collected.tools.is_empty() {
        return;
    }
    let current = input.as_ref().and_then(Option::as_ref);
    let merged = match current {
        Some(Value::String(s)) => match json_parse(s) {
            Some(parsed) => merge_into(Some(parsed), &collected.tools),
            None => merge_into(Some(Value::String(s.clone())), &collected.tools),
        },
        other => merge_into(other.cloned(), &collected.tools),
    };
    let Some(merged) = merged else {
        return;
    };
    *input = Some(Some(merged));
    if collected.drop_user_tools {
        metadata.user.shift_remove("tools");
    }
    if let Some(attrs) = &mut metadata.attributes {
        if let Some(params) = collected.model_request_parameters {
            attrs.insert(MODEL_REQUEST_PARAMETERS.to_owned(), params);
        }
        for key in &collected.remove {
            attrs.shift_remove(key.as_str());
        }
        if attrs.is_empty() {
            metadata.attributes = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata_with(attrs: Value) -> Metadata {
        Metadata {
            attributes: attrs.as_object().cloned(),
            ..Metadata::default()
        }
    }

    #[test]
    fn tool_definitions_wrap_array_input_as_messages() {
        let mut md = metadata_with(json!({
            "gen_ai.tool.definitions": "[{\"type\":\"function\",\"name\":\"f\"}]",
            "other": "x"
        }));
        let mut input = Some(Some(json!("[{\"role\":\"user\"}]")));
        move_tool_definitions(&mut md, &mut input);
        assert_eq!(
            input,
            Some(Some(
                json!({"messages": [{"role": "user"}], "tools": [{"type": "function", "name": "f"}]})
            ))
        );
        assert_eq!(md.attributes, json!({"other": "x"}).as_object().cloned());
    }

    #[test]
    fn tool_definitions_into_absent_input_and_attributes_emptied() {
        let mut md = metadata_with(json!({"ai.prompt.tools": "[\"{\\\"name\\\":\\\"f\\\"}\"]"}));
        let mut input = None;
        move_tool_definitions(&mut md, &mut input);
        assert_eq!(input, Some(Some(json!({"tools": [{"name": "f"}]}))));
        assert_eq!(md.attributes, None);
    }

    #[test]
    fn tool_definitions_wrap_plain_text_as_prompt() {
        let mut md = metadata_with(json!({"llm.tools.0.tool.json_schema": "{\"name\":\"f\"}"}));
        let mut input = Some(Some(json!("hello")));
        move_tool_definitions(&mut md, &mut input);
        assert_eq!(
            input,
            Some(Some(json!({"prompt": "hello", "tools": [{"name": "f"}]})))
        );
    }

    #[test]
    fn tool_definitions_not_moved_when_an_item_is_not_a_tool() {
        let mut md = metadata_with(json!({"gen_ai.tool.definitions": "[{\"name\":\"f\"}, 3]"}));
        let mut input = Some(None);
        move_tool_definitions(&mut md, &mut input);
        assert_eq!(input, Some(None));
        assert!(
            md.attributes
                .is_some_and(|a| a.contains_key("gen_ai.tool.definitions"))
        );
    }

    #[test]
    fn tool_definitions_dedupe_by_name_into_existing_tools() {
        let mut md = metadata_with(
            json!({"gen_ai.tool.definitions": "[{\"name\":\"f\"},{\"name\":\"g\"}]"}),
        );
        let mut input = Some(Some(json!({"tools": [{"name": "f", "v": 1}]})));
        move_tool_definitions(&mut md, &mut input);
        assert_eq!(
            input,
            Some(Some(
                json!({"tools": [{"name": "f", "v": 1}, {"name": "g"}]})
            ))
        );
    }
}
