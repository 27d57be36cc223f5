//! The contract between the forwarder and a sink: [`Sink::send`] and the [`Sent`] it returns.

use std::time::{Duration, Instant};

use super::dead_letter::{Reason, Refusal};
use crate::shape::{Shape, Unit};

/// What happened to a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sent {
    /// Items the destination accepted.
    pub delivered: usize,
    /// Items the destination refused for good.
    pub rejected: usize,
    /// The refused items as sent, with the reasons (for the dead-letter file; together they
    /// hold the `rejected` items).
    pub refused: Vec<Refusal>,
    /// Set when items remain (the unit now holds only them) and should be sent again.
    pub retry: Option<Retry>,
}

impl Sent {
    /// The whole `unit` refused for good: the destination does not take its shape (`detail`
    /// says what it takes).
    pub fn unsupported(unit: &Unit, detail: &str) -> Sent {
        Sent {
            rejected: unit.items(),
            refused: vec![unit.refusal(Reason::UnsupportedByDestination, detail)],
            ..Sent::default()
        }
    }
}

/// Why and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// What happened (no secrets).
    pub reason: String,
    /// The delay the destination asked for.
    pub delay: Option<Duration>,
}

/// Where forwarded units go: an upstream over the network, or a local store (the sink
/// contract of the forwarder). Called on a
/// dedicated thread, so it may block.
pub trait Sink: Send {
    /// What it takes.
    fn shape(&self) -> Shape;
    /// Sends `unit` until it is accepted, refused, or `deadline` passes. When items remain to
    /// be sent again, it leaves only them in `unit` and sets [`Sent::retry`].
    fn send(&mut self, unit: &mut Unit, deadline: Instant) -> Sent;
}
