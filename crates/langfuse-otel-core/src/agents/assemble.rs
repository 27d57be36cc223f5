//! Grouping agent items into turns, and emitting each turn when it is quiet for the window.
//!
//! Pure state: the caller passes the time and the spool sequence of each export, and asks
//! [`TurnAssembler::held_from`] which sequence its cursor must stay below (items of turns not
//! emitted yet come from records at or after it).
//!
//! Grouping, on every [`TurnAssembler::ready`]: items sharing an id (a trace id, a prompt or
//! turn id) form a group; a group holding a prompt (or the agent's turn span) anchors a turn;
//! a group without one joins the latest turn of its conversation that started before it (or
//! the first turn, for what the CLI logs before its first prompt). Items that join a turn
//! already emitted are sent as a follow-up in the same trace (new observations only).

use std::collections::{HashMap, HashSet, VecDeque};

use super::agent::Agent;
use super::model::{Context, Item, Part, derived_span_id, derived_trace_id};
use super::turn::{Prior, TurnIds, build};
use crate::log::{LogBatch, ResourceLogs};
use crate::span::{ResourceSpans, ScopeSpans, SpanBatch};
use crate::value::AttrValue;

/// How turns are assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssembleOptions {
    /// A turn is emitted once no item of it arrived for this long (milliseconds).
    pub window_ms: i64,
    /// Keep the agent's spans that carry no LLM work (`--agent-spans all`), under the turn.
    pub keep_agent_spans: bool,
    /// Most items held at once; beyond it every turn is emitted at once (early).
    pub max_pending_items: usize,
}

impl Default for AssembleOptions {
    fn default() -> Self {
        AssembleOptions {
            window_ms: 10_000,
            keep_agent_spans: false,
            max_pending_items: 1_000_000,
        }
    }
}

impl AssembleOptions {
    /// Options with this window (milliseconds).
    pub fn with_window_ms(mut self, window_ms: i64) -> Self {
        self.window_ms = window_ms;
        self
    }

    /// Options keeping (or dropping) the agent's spans without LLM work.
    pub fn with_keep_agent_spans(mut self, keep: bool) -> Self {
        self.keep_agent_spans = keep;
        self
    }
}

/// One emitted turn: canonical spans of one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct AssembledTurn {
    /// The agent.
    pub agent: Agent,
    /// The turn's trace id.
    pub trace_id: String,
    /// The tenant its records came with (the bridge passes the client's credentials).
    pub tenant: Option<String>,
    /// The spans (root, generations, tools, kept agent spans).
    pub batch: SpanBatch<'static>,
    /// Whether this adds to a turn emitted before (late items).
    pub follow_up: bool,
}

struct Pending {
    sequence: u64,
    arrived_ms: i64,
    item: Item,
    resource: Vec<(String, AttrValue<'static>)>,
}

struct Emitted {
    anchor_ms: i64,
    conversation: Option<String>,
    links: HashSet<String>,
    ids: TurnIds,
    prior: Prior,
    resource: Vec<(String, AttrValue<'static>)>,
}

#[derive(Default)]
struct Pool {
    pending: Vec<Pending>,
    emitted: VecDeque<Emitted>,
}

/// Emitted turns remembered per agent and tenant (for late items).
const EMITTED_KEPT: usize = 256;

/// Groups agent log records and spans into turns (see the module docs of `langfuse_otel_core::agents`).
#[derive(Default)]
pub struct TurnAssembler {
    options: AssembleOptions,
    pools: HashMap<(Option<String>, Agent), Pool>,
    pending_items: usize,
    discarded: u64,
}

impl std::fmt::Debug for TurnAssembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnAssembler")
            .field("options", &self.options)
            .field("pending_items", &self.pending_items)
            .finish_non_exhaustive()
    }
}

fn service(resource: &crate::span::Attributes<'static>) -> Vec<(String, AttrValue<'static>)> {
    ["service.name", "service.version"]
        .iter()
        .filter_map(|k| resource.get(k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

impl TurnAssembler {
    /// An empty assembler.
    pub fn new(options: AssembleOptions) -> Self {
        TurnAssembler {
            options,
            ..TurnAssembler::default()
        }
    }

    /// The options.
    pub fn options(&self) -> &AssembleOptions {
        &self.options
    }

    /// Items held (not emitted yet).
    pub fn pending_items(&self) -> usize {
        self.pending_items
    }

    /// Agent records and spans that belonged to no turn and were let go (startup events,
    /// spans of no turn), counted.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// The lowest spool sequence of a held item: a destination's cursor must stay below it.
    pub fn held_from(&self) -> Option<u64> {
        self.pools
            .values()
            .flat_map(|p| p.pending.iter().map(|i| i.sequence))
            .min()
    }

    /// Takes the records of recognised agents from a logs export (received at `now_ms`, from
    /// spool record `sequence`, with `tenant`'s credentials); returns the other records.
    pub fn push_logs(
        &mut self,
        batch: LogBatch,
        sequence: u64,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> LogBatch {
        let mut rest = LogBatch::default();
        for rl in batch.resource_logs {
            let mut other = Vec::new();
            for sl in rl.scope_logs {
                let Some(agent) = Agent::detect(&rl.resource.attributes, &sl.scope) else {
                    other.push(sl);
                    continue;
                };
                let cx = Context {
                    resource: &rl.resource.attributes,
                    scope: &sl.scope,
                };
                let resource = service(&rl.resource.attributes);
                for record in &sl.records {
                    match agent.log_item(&cx, record) {
                        Some(item) => self.hold(agent, tenant, sequence, now_ms, item, &resource),
                        None => self.discarded += 1,
                    }
                }
            }
            if !other.is_empty() {
                rest.resource_logs.push(ResourceLogs {
                    resource: rl.resource,
                    scope_logs: other,
                });
            }
        }
        rest
    }

    /// Takes the spans of recognised agents from a trace export; returns the other spans.
    pub fn push_spans(
        &mut self,
        batch: SpanBatch<'static>,
        sequence: u64,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> SpanBatch<'static> {
        let mut rest = SpanBatch::default();
        for rs in batch.resource_spans {
            let mut other: Vec<ScopeSpans<'static>> = Vec::new();
            for ss in rs.scope_spans {
                let Some(agent) = Agent::detect(&rs.resource.attributes, &ss.scope) else {
                    other.push(ss);
                    continue;
                };
                let cx = Context {
                    resource: &rs.resource.attributes,
                    scope: &ss.scope,
                };
                let resource = service(&rs.resource.attributes);
                for span in &ss.spans {
                    match agent.span_item(&cx, span) {
                        Some(item) => self.hold(agent, tenant, sequence, now_ms, item, &resource),
                        None => self.discarded += 1,
                    }
                }
            }
            if !other.is_empty() {
                rest.resource_spans.push(ResourceSpans {
                    resource: rs.resource,
                    scope_spans: other,
                });
            }
        }
        rest
    }

    fn hold(
        &mut self,
        agent: Agent,
        tenant: Option<&str>,
        sequence: u64,
        now_ms: i64,
        item: Item,
        resource: &[(String, AttrValue<'static>)],
    ) {
        self.pools
            .entry((tenant.map(str::to_owned), agent))
            .or_default()
            .pending
            .push(Pending {
                sequence,
                arrived_ms: now_ms,
                item,
                resource: resource.to_vec(),
            });
        self.pending_items += 1;
    }

    /// The turns quiet for the window at `now_ms` (and, beyond
    /// [`AssembleOptions::max_pending_items`], every turn).
    pub fn ready(&mut self, now_ms: i64) -> Vec<AssembledTurn> {
        let force = self.pending_items > self.options.max_pending_items;
        self.emit(now_ms, force)
    }

    /// Every turn held, ready or not (on shutdown).
    pub fn drain(&mut self) -> Vec<AssembledTurn> {
        self.emit(i64::MAX, true)
    }

    fn emit(&mut self, now_ms: i64, force: bool) -> Vec<AssembledTurn> {
        let mut out = Vec::new();
        let options = self.options.clone();
        let mut removed = 0usize;
        let mut discarded = 0u64;
        for ((tenant, agent), pool) in &mut self.pools {
            if pool.pending.is_empty() {
                continue;
            }
            let (turns, used, dropped) =
                emit_pool(*agent, tenant.as_deref(), pool, &options, now_ms, force);
            out.extend(turns);
            discarded += dropped;
            if !used.is_empty() {
                removed += used.len();
                let mut i = 0;
                pool.pending.retain(|_| {
                    let keep = !used.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        self.pending_items -= removed;
        self.discarded += discarded;
        self.pools
            .retain(|_, p| !p.pending.is_empty() || !p.emitted.is_empty());
        out.sort_by(|a, b| {
            let t = |x: &AssembledTurn| {
                x.batch
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans)
                    .filter_map(|s| s.start_time_unix_ms)
                    .min()
            };
            t(a).cmp(&t(b))
        });
        out
    }
}

/// Union-find over node indices.
fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Anchor {
    /// A turn emitted before (index into `pool.emitted`).
    Emitted(usize),
    /// A new turn, anchored by the group with this root.
    New(usize),
}

/// Emits the ready turns of one pool; returns them, the indices of the pending items used
/// (emitted or let go), and how many were let go.
fn emit_pool(
    agent: Agent,
    tenant: Option<&str>,
    pool: &mut Pool,
    options: &AssembleOptions,
    now_ms: i64,
    force: bool,
) -> (Vec<AssembledTurn>, HashSet<usize>, u64) {
    let n = pool.pending.len();
    let e = pool.emitted.len();
    let mut parent: Vec<usize> = (0..n + e).collect();
    let mut by_link: HashMap<&str, usize> = HashMap::new();
    for (j, emitted) in pool.emitted.iter().enumerate() {
        for link in &emitted.links {
            by_link.insert(link.as_str(), n + j);
        }
    }
    for (i, p) in pool.pending.iter().enumerate() {
        for link in &p.item.links {
            match by_link.get(link.as_str()) {
                Some(&other) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, other));
                    if a != b {
                        // An emitted turn stays the root of its group.
                        if a >= n {
                            parent[b] = a;
                        } else {
                            parent[a] = b;
                        }
                    }
                }
                None => {
                    by_link.insert(link.as_str(), i);
                }
            }
        }
    }
    // Groups of pending items, by root.
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    // Anchors: (time, conversation, anchor).
    let mut anchors: Vec<(i64, Option<String>, Anchor)> = pool
        .emitted
        .iter()
        .enumerate()
        .map(|(j, t)| (t.anchor_ms, t.conversation.clone(), Anchor::Emitted(j)))
        .collect();
    let mut group_anchor: HashMap<usize, Anchor> = HashMap::new();
    let mut unanchored: Vec<usize> = Vec::new();
    for (&root, members) in &groups {
        if root >= n {
            group_anchor.insert(root, Anchor::Emitted(root - n));
            continue;
        }
        let prompt_time = members
            .iter()
            .filter(|&&i| matches!(pool.pending[i].item.part, Part::Prompt(_)))
            .map(|&i| pool.pending[i].item.time_ms)
            .min()
            .or_else(|| {
                members
                    .iter()
                    .filter(|&&i| matches!(pool.pending[i].item.part, Part::TurnSpan(_)))
                    .map(|&i| pool.pending[i].item.time_ms)
                    .min()
            });
        match prompt_time {
            Some(t) => {
                anchors.push((t, conversation(pool, members), Anchor::New(root)));
                group_anchor.insert(root, Anchor::New(root));
            }
            None => unanchored.push(root),
        }
    }
    anchors.sort_by_key(|(t, _, _)| *t);
    // Unanchored groups join a turn by conversation and time.
    let mut members_of: HashMap<Anchor, Vec<usize>> = HashMap::new();
    for (&root, &anchor) in &group_anchor {
        members_of
            .entry(anchor)
            .or_default()
            .extend(groups.get(&root).into_iter().flatten().copied());
    }
    let mut used = HashSet::new();
    let mut dropped = 0u64;
    let mut turns = Vec::new();
    let mut orphans: Vec<usize> = Vec::new();
    for root in unanchored {
        let members = &groups[&root];
        let time = members
            .iter()
            .map(|&i| pool.pending[i].item.time_ms)
            .min()
            .unwrap_or(0);
        let conv = conversation(pool, members);
        let candidates: Vec<&(i64, Option<String>, Anchor)> = anchors
            .iter()
            .filter(|(_, c, _)| conv.is_none() || c.is_none() || *c == conv)
            .collect();
        let chosen = candidates
            .iter()
            .rev()
            .find(|(t, _, _)| *t <= time)
            .or_else(|| candidates.first())
            .map(|(_, _, a)| *a);
        match chosen {
            Some(anchor) => members_of.entry(anchor).or_default().extend(members),
            None => orphans.push(root),
        }
    }
    let quiet = |members: &[usize]| {
        force
            || members
                .iter()
                .map(|&i| pool.pending[i].arrived_ms)
                .max()
                .is_none_or(|last| now_ms.saturating_sub(last) >= options.window_ms)
    };
    // Groups that belong to no turn: emitted alone when they hold LLM work, else let go.
    for root in orphans {
        let members = groups[&root].clone();
        if !quiet(&members) {
            continue;
        }
        let has_work = members.iter().any(|&i| {
            matches!(
                pool.pending[i].item.part,
                Part::Generation(_) | Part::Tool(_)
            )
        });
        if has_work {
            members_of.insert(Anchor::New(root), members);
            anchors.push((0, None, Anchor::New(root)));
        } else {
            dropped += members.len() as u64;
            used.extend(members);
        }
    }
    let mut new_emitted: Vec<Emitted> = Vec::new();
    let mut anchor_list: Vec<(Anchor, Vec<usize>)> = members_of.into_iter().collect();
    anchor_list.sort_by_key(|(a, m)| {
        (
            matches!(a, Anchor::New(_)),
            m.iter()
                .map(|&i| pool.pending[i].item.time_ms)
                .min()
                .unwrap_or(0),
        )
    });
    for (anchor, members) in anchor_list {
        if members.is_empty() || !quiet(&members) {
            continue;
        }
        let items: Vec<&Item> = members.iter().map(|&i| &pool.pending[i].item).collect();
        let links: HashSet<String> = items.iter().flat_map(|i| i.links.iter().cloned()).collect();
        match anchor {
            Anchor::Emitted(j) => {
                let t = &mut pool.emitted[j];
                let built = build(
                    agent,
                    &t.ids,
                    t.conversation.as_deref(),
                    &items,
                    &t.resource,
                    options.keep_agent_spans,
                    &t.prior,
                );
                t.links.extend(links);
                if !built.ids.is_empty() {
                    t.prior.sent.extend(built.ids);
                    t.prior.gen_keys.extend(built.gen_keys);
                    t.prior.gens += built.gens;
                    t.prior.tool_keys.extend(built.tool_keys);
                    turns.push(AssembledTurn {
                        agent,
                        trace_id: t.ids.trace_id.clone(),
                        tenant: tenant.map(str::to_owned),
                        batch: built.batch,
                        follow_up: true,
                    });
                }
            }
            Anchor::New(_) => {
                let conv = conversation(pool, &members);
                let anchor_ms = items
                    .iter()
                    .filter(|i| matches!(i.part, Part::Prompt(_) | Part::TurnSpan(_)))
                    .map(|i| i.time_ms)
                    .min()
                    .or_else(|| items.iter().map(|i| i.time_ms).min())
                    .unwrap_or(0);
                let ids = turn_ids(agent, conv.as_deref(), anchor_ms, &items);
                let resource = members
                    .iter()
                    .map(|&i| &pool.pending[i].resource)
                    .find(|r| !r.is_empty())
                    .cloned()
                    .unwrap_or_default();
                let built = build(
                    agent,
                    &ids,
                    conv.as_deref(),
                    &items,
                    &resource,
                    options.keep_agent_spans,
                    &Prior::default(),
                );
                turns.push(AssembledTurn {
                    agent,
                    trace_id: ids.trace_id.clone(),
                    tenant: tenant.map(str::to_owned),
                    batch: built.batch,
                    follow_up: false,
                });
                new_emitted.push(Emitted {
                    anchor_ms,
                    conversation: conv,
                    links,
                    ids,
                    prior: Prior {
                        sent: built.ids.into_iter().collect(),
                        gen_keys: built.gen_keys.into_iter().collect(),
                        gens: built.gens,
                        tool_keys: built.tool_keys.into_iter().collect(),
                    },
                    resource,
                });
            }
        }
        used.extend(members);
    }
    pool.emitted.extend(new_emitted);
    while pool.emitted.len() > EMITTED_KEPT {
        pool.emitted.pop_front();
    }
    (turns, used, dropped)
}

/// The conversation of a group: the first item that names one (a prompt first).
fn conversation(pool: &Pool, members: &[usize]) -> Option<String> {
    members
        .iter()
        .map(|&i| &pool.pending[i].item)
        .filter(|i| matches!(i.part, Part::Prompt(_) | Part::TurnSpan(_)))
        .chain(members.iter().map(|&i| &pool.pending[i].item))
        .find_map(|i| i.conversation.clone())
}

/// The turn's trace: the agent's turn span's, else the trace the prompt event carries, else
/// one derived from the conversation and the prompt.
fn turn_ids(agent: Agent, conversation: Option<&str>, anchor_ms: i64, items: &[&Item]) -> TurnIds {
    if let Some(span) = items
        .iter()
        .filter(|i| matches!(i.part, Part::TurnSpan(_)))
        .find_map(|i| i.span.as_deref())
    {
        return TurnIds {
            trace_id: span.trace_id.to_string(),
            root_span_id: span.span_id.to_string(),
        };
    }
    let prompt = items.iter().find(|i| matches!(i.part, Part::Prompt(_)));
    let prompt_trace = prompt.and_then(|p| {
        p.links
            .iter()
            .find_map(|l| l.strip_prefix("trace:").map(str::to_owned))
    });
    let prompt_id = prompt.and_then(|p| match &p.part {
        Part::Prompt(pr) => pr.prompt_id.clone(),
        _ => None,
    });
    let anchor = anchor_ms.to_string();
    let trace_id = prompt_trace.unwrap_or_else(|| {
        derived_trace_id(&[
            agent.name(),
            conversation.unwrap_or_default(),
            prompt_id.as_deref().unwrap_or_default(),
            &anchor,
        ])
    });
    let root_span_id = derived_span_id(&[&trace_id, "turn", &anchor]);
    TurnIds {
        trace_id,
        root_span_id,
    }
}
