//! `langfuse-bridge traces list|show --db PATH`: the local trace store from the terminal.
//!
//! - `traces list` prints one line per trace (newest first), filtered by `--name`, `--user`,
//!   `--session`, `--tag` (repeatable), `--since`/`--until` (ISO-8601, a date, or a relative
//!   `30m`/`2h`/`7d` ago), `--level` (traces with an observation at that level or above),
//!   `--score NAME>=X` / `NAME<=X` / `NAME=X` (repeatable), `--sort`, `--limit N`; `--json`
//!   prints a JSON array of trace summaries.
//! - `traces show ID` prints the observation tree with start offsets, durations, types, model,
//!   usage, cost, level, status and scores; `--json` prints the trace with its observations and
//!   scores, with Langfuse's public API field names.
//!
//! The text output shows every value from the store (names, ids, tags, models, scores, status
//! messages) with its control characters escaped
//! ([`escape_control`](langfuse_otel_core::terminal::escape_control)): a span name cannot set
//! the terminal's title, write its clipboard, clear it or forge rows. `--json` is JSON with
//! every control character as a `\u` escape (the same values).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use langfuse_local::params::{parse_level, parse_time};
use langfuse_local::{
    ObservationView, ScoreCondition, ScoreView, SortKey, Store, TraceDetail, TraceFilter,
    TraceSummary,
};
use langfuse_otel_core::record::Level;
use langfuse_otel_core::terminal::{draw_tree, escape_control as esc, escape_json_for_terminal};

/// Arguments of `traces`.
#[derive(Debug, Clone, clap::Args)]
pub struct TracesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TracesCommand,
}

/// `traces list` or `traces show`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TracesCommand {
    /// List traces, newest first.
    List(ListArgs),
    /// Show one trace: its observation tree, timings, usage, cost and scores.
    Show(ShowArgs),
}

/// Arguments of `traces list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// The trace store.
    #[arg(long, default_value = langfuse_local::DEFAULT_DB_PATH)]
    pub db: PathBuf,
    /// Only traces with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Only traces of this user id.
    #[arg(long)]
    pub user: Option<String>,
    /// Only traces of this session id.
    #[arg(long)]
    pub session: Option<String>,
    /// Only traces with this tag (repeat for several: all must match).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only traces starting at or after this time (ISO-8601, YYYY-MM-DD, or 30m/2h/7d ago).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<i64>,
    /// Only traces starting before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<i64>,
    /// Only traces with an observation at this level or above (DEBUG, DEFAULT, WARNING, ERROR).
    #[arg(long, value_parser = parse_level)]
    pub level: Option<Level>,
    /// Score condition NAME>=X, NAME<=X or NAME=X (repeat for several: all must hold).
    #[arg(long = "score")]
    pub scores: Vec<ScoreCondition>,
    /// Order by time, latency, cost or errors (descending).
    #[arg(long, default_value = "time")]
    pub sort: SortKey,
    /// Ascending order.
    #[arg(long)]
    pub asc: bool,
    /// At most N traces (0: all).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Skip the first N traces.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Print a JSON array (Langfuse public API field names).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `traces show`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// Trace id.
    pub id: String,
    /// The trace store.
    #[arg(long, default_value = langfuse_local::DEFAULT_DB_PATH)]
    pub db: PathBuf,
    /// Print JSON (Langfuse public API field names).
    #[arg(long)]
    pub json: bool,
}

/// Why a `traces` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TracesCmdError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] langfuse_local::StoreError),
    /// The store file does not exist (it is not created by a read command).
    #[error(
        "no trace store at {0} (create one with `langfuse-bridge import` or `serve --to local`)"
    )]
    NoStore(PathBuf),
    /// No trace with that id.
    #[error("no trace with id {0:?} in {1}")]
    UnknownTrace(String, PathBuf),
}

impl ListArgs {
    /// The store filter these arguments describe.
    pub fn filter(&self) -> TraceFilter {
        TraceFilter {
            name: self.name.clone(),
            user_id: self.user.clone(),
            session_id: self.session.clone(),
            tags: self.tags.clone(),
            since_ms: self.since,
            until_ms: self.until,
            min_level: self.level,
            scores: self.scores.clone(),
            sort: self.sort,
            ascending: self.asc,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

fn open_existing(db: &PathBuf) -> Result<Store, TracesCmdError> {
    if !db.exists() {
        return Err(TracesCmdError::NoStore(db.clone()));
    }
    Ok(Store::open(db)?)
}

/// Runs `traces list` or `traces show`, returning what to print.
pub fn run(args: &TracesArgs) -> Result<String, TracesCmdError> {
    match &args.command {
        TracesCommand::List(list) => {
            let store = open_existing(&list.db)?;
            let traces = store.list_traces(&list.filter())?;
            Ok(if list.json {
                let mut text = serde_json::to_string_pretty(&traces).unwrap_or_default();
                text.push('\n');
                escape_json_for_terminal(text)
            } else {
                render_list(&traces)
            })
        }
        TracesCommand::Show(show) => {
            let store = open_existing(&show.db)?;
            let trace = store
                .trace(&show.id)?
                .ok_or_else(|| TracesCmdError::UnknownTrace(show.id.clone(), show.db.clone()))?;
            Ok(if show.json {
                let mut text = serde_json::to_string_pretty(&trace).unwrap_or_default();
                text.push('\n');
                escape_json_for_terminal(text)
            } else {
                render_tree(&trace)
            })
        }
    }
}

fn cost_text(cost: Option<f64>, estimated: bool) -> String {
    match cost {
        // Shortest exact form of the cost rounded to 1e-10 USD: small costs stay visible.
        Some(c) => format!(
            "${}{}",
            (c * 1e10).round() / 1e10,
            if estimated { " (est.)" } else { "" }
        ),
        None => "-".to_owned(),
    }
}

fn seconds_text(s: Option<f64>) -> String {
    match s {
        None => "-".to_owned(),
        Some(s) if s < 1.0 => format!("{} ms", (s * 1000.0).round()),
        Some(s) => format!("{s:.2} s"),
    }
}

/// One line per trace.
pub fn render_list(traces: &[TraceSummary]) -> String {
    if traces.is_empty() {
        return "no traces\n".to_owned();
    }
    let mut out = String::new();
    for t in traces {
        let _ = write!(
            out,
            "{}  {}  {}  {}  obs={} tokens={} cost={}",
            esc(t.timestamp.as_deref().unwrap_or("-")),
            esc(&t.id),
            esc(t.name.as_deref().unwrap_or("(unnamed)")),
            seconds_text(t.latency),
            t.observation_count,
            t.total_tokens,
            cost_text(t.total_cost, t.cost_estimated),
        );
        if let Some(u) = &t.user_id {
            let _ = write!(out, " user={}", esc(u));
        }
        if let Some(s) = &t.session_id {
            let _ = write!(out, " session={}", esc(s));
        }
        if !t.tags.is_empty() {
            let _ = write!(out, " tags={}", esc(&t.tags.join(",")));
        }
        if t.level != "DEFAULT" {
            let _ = write!(out, " level={}", esc(t.level));
        }
        if t.error_count > 0 {
            let _ = write!(out, " errors={}", t.error_count);
        }
        for s in &t.scores {
            let value = s
                .string_value
                .clone()
                .or_else(|| s.value.map(|v| v.to_string()))
                .unwrap_or_default();
            let _ = write!(out, " {}={}", esc(&s.name), esc(&value));
        }
        out.push('\n');
    }
    out
}

fn score_text(s: &ScoreView) -> String {
    let value = s
        .string_value
        .clone()
        .or_else(|| s.value.map(|v| v.to_string()))
        .unwrap_or_default();
    format!("{}={}", esc(&s.name), esc(&value))
}

/// The observation tree of one trace, with timings relative to the trace start.
pub fn render_tree(trace: &TraceDetail) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "trace {} ({})",
        esc(trace.name.as_deref().unwrap_or("(unnamed)")),
        esc(&trace.id)
    );
    if let Some(ts) = &trace.timestamp {
        let _ = write!(out, " {}", esc(ts));
    }
    let _ = write!(
        out,
        " latency={} tokens={} cost={}",
        seconds_text(trace.latency),
        trace.total_tokens,
        cost_text(trace.total_cost, trace.cost_estimated)
    );
    if let Some(u) = &trace.user_id {
        let _ = write!(out, " user={}", esc(u));
    }
    if let Some(s) = &trace.session_id {
        let _ = write!(out, " session={}", esc(s));
    }
    if !trace.tags.is_empty() {
        let _ = write!(out, " tags={}", esc(&trace.tags.join(",")));
    }
    out.push('\n');
    let trace_scores: Vec<String> = trace
        .score_details
        .iter()
        .filter(|s| s.observation_id.is_none())
        .map(score_text)
        .collect();
    if !trace_scores.is_empty() {
        let _ = writeln!(out, "scores: {}", trace_scores.join(" "));
    }
    let ids: HashMap<&str, usize> = trace
        .observations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.as_str(), i))
        .collect();
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, o) in trace.observations.iter().enumerate() {
        // An observation whose parent is not in the trace is shown at the root.
        let parent = o
            .parent_observation_id
            .as_deref()
            .and_then(|p| ids.get(p).copied());
        children.entry(parent).or_default().push(i);
    }
    let origin = trace
        .observations
        .iter()
        .filter_map(ObservationView::start_ms)
        .min();
    // Pre-order rows, iteratively (any depth); `visited` guards against parent loops.
    let mut rows: Vec<(usize, String)> = Vec::new();
    let roots = children.get(&None).cloned().unwrap_or_default();
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    let mut visited = vec![false; trace.observations.len()];
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        rows.push((
            depth,
            observation_text(&trace.observations[i], origin, trace),
        ));
        if let Some(kids) = children.get(&Some(i)) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    out.push_str(&draw_tree(&rows));
    out
}

/// One observation's row: name, type, start offset, duration, model, usage, cost, level,
/// status and scores.
fn observation_text(o: &ObservationView, origin: Option<i64>, trace: &TraceDetail) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{} [{}]",
        esc(o.name.as_deref().unwrap_or("(unnamed)")),
        esc(&o.kind.to_ascii_lowercase())
    );
    if let (Some(start), Some(origin)) = (o.start_ms(), origin) {
        let _ = write!(out, " +{} ms", start - origin);
    }
    if o.latency.is_some() {
        let _ = write!(out, " {}", seconds_text(o.latency));
    }
    if let Some(m) = &o.model {
        let _ = write!(out, " model={}", esc(m));
    }
    if let Some(serde_json::Value::Object(u)) = &o.usage_details {
        let parts: Vec<String> = u.iter().map(|(k, v)| format!("{}:{v}", esc(k))).collect();
        let _ = write!(out, " usage={}", parts.join(" "));
    }
    if o.total_cost.is_some() {
        let _ = write!(out, " cost={}", cost_text(o.total_cost, o.cost_estimated));
    }
    if o.level != "DEFAULT" {
        let _ = write!(out, " level={}", esc(&o.level));
    }
    if let Some(s) = &o.status_message {
        let _ = write!(out, " status=\"{}\"", esc(s));
    }
    let scores: Vec<String> = trace
        .score_details
        .iter()
        .filter(|s| s.observation_id.as_deref() == Some(o.id.as_str()))
        .map(score_text)
        .collect();
    if !scores.is_empty() {
        let _ = write!(out, " scores: {}", scores.join(" "));
    }
    out
}
