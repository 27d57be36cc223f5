//! The set of trace ids a long-lived translator has already emitted a trace for.
//!
//! The Langfuse server remembers every trace id it receives for 10 minutes; a span of a trace
//! it has seen does not produce another minimal `trace-create`. [`SeenTraces`] keeps the same
//! semantics on the client, bounded in memory: entries expire after `ttl` and the oldest are
//! evicted beyond `capacity`.

use std::collections::{HashMap, VecDeque};

/// Bounded, time-limited set of trace ids.
#[derive(Debug)]
pub struct SeenTraces {
    ttl_ms: i64,
    capacity: usize,
    /// Trace id → time it was first seen (Unix ms).
    first_seen: HashMap<Box<str>, i64>,
    /// Insertion order, for expiry and eviction.
    order: VecDeque<(Box<str>, i64)>,
}

impl Default for SeenTraces {
    /// 10 minutes (the server's TTL), at most 100,000 ids.
    fn default() -> Self {
        SeenTraces::new(600_000, 100_000)
    }
}

impl SeenTraces {
    /// A set whose entries live `ttl_ms` milliseconds, holding at most `capacity` ids.
    pub fn new(ttl_ms: i64, capacity: usize) -> Self {
        SeenTraces {
            ttl_ms,
            capacity,
            first_seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `trace_id` as seen at `now_ms` (like Redis `SET NX`: an existing entry keeps its
    /// time) and returns whether it had been seen before.
    pub fn check_and_insert(&mut self, trace_id: &str, now_ms: i64) -> bool {
        self.expire(now_ms);
        if self.capacity == 0 {
            return false;
        }
        if self.first_seen.contains_key(trace_id) {
            return true;
        }
        while self.first_seen.len() >= self.capacity {
            match self.order.pop_front() {
                Some((id, _)) => {
                    self.first_seen.remove(&id);
                }
                None => break,
            }
        }
        let id: Box<str> = trace_id.into();
        self.first_seen.insert(id.clone(), now_ms);
        self.order.push_back((id, now_ms));
        false
    }

    /// Number of ids currently remembered.
    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.first_seen.is_empty()
    }

    fn expire(&mut self, now_ms: i64) {
        while let Some((_, at)) = self.order.front() {
            if now_ms.saturating_sub(*at) < self.ttl_ms {
                break;
            }
            if let Some((id, _)) = self.order.pop_front() {
                self.first_seen.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_seen_after_its_first_insert() {
        let mut seen = SeenTraces::default();
        assert!(!seen.check_and_insert("a", 0));
        assert!(seen.check_and_insert("a", 1));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut seen = SeenTraces::new(1000, 10);
        seen.check_and_insert("a", 0);
        assert!(seen.check_and_insert("a", 999));
        assert!(!seen.check_and_insert("a", 1000));
    }

    #[test]
    fn the_oldest_entry_is_evicted_at_capacity() {
        let mut seen = SeenTraces::new(1000, 2);
        seen.check_and_insert("a", 0);
        seen.check_and_insert("b", 0);
        seen.check_and_insert("c", 0);
        assert_eq!(seen.len(), 2);
        assert!(!seen.check_and_insert("a", 1));
    }
}
