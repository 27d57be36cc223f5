//! A bundled price table of current models, used to *estimate* the cost of a generation that
//! carries usage but no cost.
//!
//! Prices are USD per million tokens, from the vendors' public price pages as of
//! [`PRICE_TABLE_DATE`] (standard tier, prompts up to the first long-context threshold). They go
//! stale: a cost that came with the record always wins, and an estimate is marked as such
//! (`costEstimated: true`).
//!
//! Usage keys follow Langfuse's normalized usage details: `input` (without cached tokens),
//! `output` (without reasoning tokens when reported separately), and `input_*` / `output_*`
//! details. A key containing `cache_read` or `cached` is priced as a cache read, `cache_creation`
//! or `cache_write` as a cache write, `reasoning` as reasoning output; other `input*` keys at the
//! input price, other `output*` keys at the output price; `total` is ignored.
//!
//! ```
//! use langfuse_local::price::{estimate_cost, find_price};
//! use serde_json::json;
//!
//! let price = find_price("openai/gpt-4o-mini-2024-07-18").unwrap();
//! assert_eq!(price.model, "gpt-4o-mini");
//! let usage = json!({"input": 1_000_000, "output": 1_000_000, "total": 2_000_000});
//! let cost = estimate_cost("gpt-4o-mini", usage.as_object().unwrap()).unwrap();
//! assert!((cost["total"].as_f64().unwrap() - 0.75).abs() < 1e-9);
//! ```

use serde_json::{Map, Value};

/// The date the prices in [`PRICES`] were taken from the vendors' pages.
pub const PRICE_TABLE_DATE: &str = "2025-08-15";

/// The price of one model family, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    /// The model name prefix this price applies to (the longest matching prefix wins).
    pub model: &'static str,
    /// Input (prompt) tokens.
    pub input: f64,
    /// Output (completion) tokens.
    pub output: f64,
    /// Input tokens read from the prompt cache.
    pub cache_read: f64,
    /// Input tokens written to the prompt cache.
    pub cache_write: f64,
    /// Reasoning tokens (billed as output by every vendor listed).
    pub reasoning: f64,
}

const fn p(
    model: &'static str,
    input: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
) -> ModelPrice {
    ModelPrice {
        model,
        input,
        output,
        cache_read,
        cache_write,
        reasoning: output,
    }
}

/// The bundled table (see the module docs for units and date).
pub const PRICES: &[ModelPrice] = &[
    // OpenAI (cache writes are not billed separately)
    p("gpt-5", 1.25, 10.0, 0.125, 1.25),
    p("gpt-5-mini", 0.25, 2.0, 0.025, 0.25),
    p("gpt-5-nano", 0.05, 0.40, 0.005, 0.05),
    p("gpt-4.1", 2.0, 8.0, 0.50, 2.0),
    p("gpt-4.1-mini", 0.40, 1.60, 0.10, 0.40),
    p("gpt-4.1-nano", 0.10, 0.40, 0.025, 0.10),
    p("gpt-4o", 2.50, 10.0, 1.25, 2.50),
    p("gpt-4o-mini", 0.15, 0.60, 0.075, 0.15),
    p("gpt-4-turbo", 10.0, 30.0, 10.0, 10.0),
    p("gpt-3.5-turbo", 0.50, 1.50, 0.50, 0.50),
    p("o1", 15.0, 60.0, 7.50, 15.0),
    p("o1-mini", 1.10, 4.40, 0.55, 1.10),
    p("o3", 2.0, 8.0, 0.50, 2.0),
    p("o3-mini", 1.10, 4.40, 0.55, 1.10),
    p("o4-mini", 1.10, 4.40, 0.275, 1.10),
    p("text-embedding-3-small", 0.02, 0.0, 0.02, 0.02),
    p("text-embedding-3-large", 0.13, 0.0, 0.13, 0.13),
    p("text-embedding-ada-002", 0.10, 0.0, 0.10, 0.10),
    // Anthropic (5-minute cache writes)
    p("claude-opus-4-1", 15.0, 75.0, 1.50, 18.75),
    p("claude-opus-4", 15.0, 75.0, 1.50, 18.75),
    p("claude-sonnet-4", 3.0, 15.0, 0.30, 3.75),
    p("claude-3-7-sonnet", 3.0, 15.0, 0.30, 3.75),
    p("claude-3-5-sonnet", 3.0, 15.0, 0.30, 3.75),
    p("claude-3-5-haiku", 0.80, 4.0, 0.08, 1.0),
    p("claude-3-haiku", 0.25, 1.25, 0.03, 0.30),
    p("claude-3-opus", 15.0, 75.0, 1.50, 18.75),
    // Google (prompts up to 200k tokens)
    p("gemini-2.5-pro", 1.25, 10.0, 0.31, 1.25),
    p("gemini-2.5-flash", 0.30, 2.50, 0.075, 0.30),
    p("gemini-2.5-flash-lite", 0.10, 0.40, 0.025, 0.10),
    p("gemini-2.0-flash", 0.10, 0.40, 0.025, 0.10),
    p("gemini-2.0-flash-lite", 0.075, 0.30, 0.075, 0.075),
    p("gemini-1.5-pro", 1.25, 5.0, 0.3125, 1.25),
    p("gemini-1.5-flash", 0.075, 0.30, 0.01875, 0.075),
    // Mistral
    p("mistral-large", 2.0, 6.0, 2.0, 2.0),
    p("mistral-medium", 0.40, 2.0, 0.40, 0.40),
    p("mistral-small", 0.10, 0.30, 0.10, 0.10),
    p("magistral-medium", 2.0, 5.0, 2.0, 2.0),
    p("magistral-small", 0.50, 1.50, 0.50, 0.50),
    p("codestral", 0.30, 0.90, 0.30, 0.30),
    p("open-mistral-nemo", 0.15, 0.15, 0.15, 0.15),
    p("mistral-embed", 0.10, 0.0, 0.10, 0.10),
];

/// The price for a model name: provider prefixes (`openai/`, `anthropic.`, `models/`) are
/// stripped, matching is case-insensitive, and the longest table prefix that ends at a word
/// boundary (`-`, `.`, `@`, `:` or the end) wins, so `gpt-4o-mini-2024-07-18` is priced as
/// `gpt-4o-mini`, not `gpt-4o`.
pub fn find_price(model: &str) -> Option<&'static ModelPrice> {
    let lower = model.trim().to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let name = name
        .strip_prefix("anthropic.")
        .or_else(|| name.strip_prefix("us.anthropic."))
        .or_else(|| name.strip_prefix("eu.anthropic."))
        .unwrap_or(name);
    PRICES
        .iter()
        .filter(|p| {
            name.strip_prefix(p.model).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(['-', '.', '@', ':'])
                // `gpt-4.1` must not price `gpt-4.1-mini`: the longer entry wins below.
            })
        })
        .max_by_key(|p| p.model.len())
}

/// Estimates a generation's cost from its usage details: `{input, output, …, total}` in USD
/// by usage kind, or `None` when the model is unknown or no usage key could be priced.
pub fn estimate_cost(model: &str, usage: &Map<String, Value>) -> Option<Map<String, Value>> {
    let price = find_price(model)?;
    let mut cost = Map::new();
    let mut total = 0.0;
    for (key, value) in usage {
        let Some(tokens) = value.as_f64().filter(|t| t.is_finite() && *t > 0.0) else {
            continue;
        };
        let per_million = if key == "total" {
            continue;
        } else if key.contains("cache_read") || key.contains("cached") {
            price.cache_read
        } else if key.contains("cache_creation") || key.contains("cache_write") {
            price.cache_write
        } else if key.contains("reasoning") {
            price.reasoning
        } else if key.starts_with("input") || key.starts_with("prompt") {
            price.input
        } else if key.starts_with("output") || key.starts_with("completion") {
            price.output
        } else {
            continue;
        };
        let amount = tokens * per_million / 1_000_000.0;
        total += amount;
        cost.insert(key.clone(), number(amount));
    }
    if cost.is_empty() {
        return None;
    }
    cost.insert("total".into(), number(total));
    Some(cost)
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn longest_prefix_at_a_word_boundary_wins() {
        assert_eq!(find_price("gpt-4o-mini").unwrap().model, "gpt-4o-mini");
        assert_eq!(find_price("gpt-4o-2024-08-06").unwrap().model, "gpt-4o");
        assert_eq!(find_price("gpt-4.1-mini").unwrap().model, "gpt-4.1-mini");
        assert_eq!(
            find_price("anthropic.claude-3-5-sonnet-20241022-v2:0")
                .unwrap()
                .model,
            "claude-3-5-sonnet"
        );
        assert_eq!(
            find_price("models/gemini-2.5-flash-lite").unwrap().model,
            "gemini-2.5-flash-lite"
        );
        assert!(find_price("gpt-4ox").is_none());
        assert!(find_price("my-own-model").is_none());
    }

    #[test]
    fn cache_and_reasoning_tokens_use_their_own_prices() {
        let usage = json!({"input": 1_000_000, "input_cached_tokens": 1_000_000,
            "input_cache_creation": 1_000_000, "output": 1_000_000,
            "output_reasoning_tokens": 1_000_000, "total": 5_000_000});
        let cost = estimate_cost("claude-sonnet-4-20250514", usage.as_object().unwrap()).unwrap();
        assert_eq!(cost["input"], json!(3.0));
        assert_eq!(cost["input_cached_tokens"], json!(0.3));
        assert_eq!(cost["input_cache_creation"], json!(3.75));
        assert_eq!(cost["output"], json!(15.0));
        assert_eq!(cost["output_reasoning_tokens"], json!(15.0));
        assert!((cost["total"].as_f64().unwrap() - 37.05).abs() < 1e-9);
    }

    #[test]
    fn unknown_model_or_unpriced_usage_gives_no_estimate() {
        let usage = json!({"input": 10});
        assert!(estimate_cost("unknown", usage.as_object().unwrap()).is_none());
        let usage = json!({"total": 10});
        assert!(estimate_cost("gpt-4o", usage.as_object().unwrap()).is_none());
    }
}
