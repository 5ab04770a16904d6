//! Counters and latency histograms a metrics exporter can publish, and their
//! Prometheus text rendering.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Live counters of one node (shared with its handles).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) proposals: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) persists: AtomicU64,
    pub(crate) entries_persisted: AtomicU64,
    pub(crate) elections_won: AtomicU64,
    pub(crate) snapshots_taken: AtomicU64,
    pub(crate) snapshots_installed: AtomicU64,
    pub(crate) snapshots_rejected: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) outbound_dropped: AtomicU64,
    pub(crate) propose_latency: AtomicHistogram,
    pub(crate) read_latency: AtomicHistogram,
    pub(crate) persist_latency: AtomicHistogram,
    /// The log write in progress, if any (a stalled disk shows as an old one): the
    /// node's log writer's, which the groups of a host share.
    pub(crate) write_in_flight: std::sync::Arc<InFlight>,
}

/// When the log write in progress started, or none.
#[derive(Debug)]
pub(crate) struct InFlight {
    epoch: std::time::Instant,
    /// Milliseconds since `epoch` plus one, or 0 when no write is in progress.
    started_ms: AtomicU64,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            epoch: std::time::Instant::now(),
            started_ms: AtomicU64::new(0),
        }
    }
}

impl InFlight {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn begin(&self) {
        self.started_ms
            .store(self.now_ms().saturating_add(1), Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        self.started_ms.store(0, Ordering::Relaxed);
    }

    /// How long the write in progress has taken so far.
    pub(crate) fn age(&self) -> Option<Duration> {
        match self.started_ms.load(Ordering::Relaxed) {
            0 => None,
            started => Some(Duration::from_millis(
                self.now_ms().saturating_add(1).saturating_sub(started),
            )),
        }
    }
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Metrics {
            group: 0,
            proposals: get(&self.proposals),
            applied: get(&self.applied),
            persists: get(&self.persists),
            entries_persisted: get(&self.entries_persisted),
            elections_won: get(&self.elections_won),
            snapshots_taken: get(&self.snapshots_taken),
            snapshots_installed: get(&self.snapshots_installed),
            snapshots_rejected: get(&self.snapshots_rejected),
            messages_sent: get(&self.messages_sent),
            outbound_dropped: get(&self.outbound_dropped),
            propose_latency: self.propose_latency.snapshot(),
            read_latency: self.read_latency.snapshot(),
            persist_latency: self.persist_latency.snapshot(),
            persist_in_flight_ms: self
                .write_in_flight
                .age()
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// A point-in-time copy of a node's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// The Raft group of the node (0 for a node started on its own); rendered as a
    /// `group` label when not 0.
    pub group: raft_core::GroupId,
    /// Commands proposed on this node while it was leader.
    pub proposals: u64,
    /// Entries applied to the state machine.
    pub applied: u64,
    /// Persist calls (each ends in one fsync with durable storage).
    pub persists: u64,
    /// Entries written to the log.
    pub entries_persisted: u64,
    /// Elections this node won.
    pub elections_won: u64,
    /// Snapshots taken by this node.
    pub snapshots_taken: u64,
    /// Leaders' snapshots this node's state machine was restored from.
    pub snapshots_installed: u64,
    /// Leaders' snapshots refused: damaged on the way, or refused by the state machine.
    pub snapshots_rejected: u64,
    /// Messages handed to the transport.
    pub messages_sent: u64,
    /// Messages dropped because a peer's outbound queue was full, by count
    /// (`RaftConfig::outbound_queue`) or by bytes (`RaftConfig::max_outbound_bytes`).
    pub outbound_dropped: u64,
    /// From `propose` to its response, for proposals that succeeded (on the
    /// node whose handle was called).
    pub propose_latency: Histogram,
    /// From `read` to its answer, for reads that succeeded.
    pub read_latency: Histogram,
    /// One log write (the snapshot, entries and hard state of one or more Readys,
    /// and the fsync).
    pub persist_latency: Histogram,
    /// How long the log write in progress has taken so far (0: none in progress); a
    /// stalled disk shows here first.
    pub persist_in_flight_ms: u64,
}

impl Metrics {
    /// The metrics in the Prometheus text exposition format (version 0.0.4),
    /// every series labelled `node="<node>"`: counters as `easyraft_*_total`,
    /// latencies as `easyraft_*_seconds` histograms.
    ///
    /// ```
    /// let text = raft_cluster::Metrics::default().to_prometheus("node1");
    /// assert!(text.contains("easyraft_proposals_total{node=\"node1\"} 0"));
    /// assert!(text.contains("easyraft_propose_latency_seconds_count{node=\"node1\"} 0"));
    /// ```
    pub fn to_prometheus(&self, node: &str) -> String {
        let mut label = escape_label(node);
        if self.group != 0 {
            // Inside the quotes of `node="..."`: close them, add the group label.
            label = format!("{label}\",group=\"{}", self.group);
        }
        let mut out = String::new();
        let counters = [
            ("proposals", "Commands proposed while leader.", self.proposals),
            ("applied", "Entries applied to the state machine.", self.applied),
            (
                "persists",
                "Persist calls (one fsync each with durable storage).",
                self.persists,
            ),
            (
                "entries_persisted",
                "Entries written to the log.",
                self.entries_persisted,
            ),
            ("elections_won", "Elections won.", self.elections_won),
            ("snapshots_taken", "Snapshots taken.", self.snapshots_taken),
            (
                "snapshots_installed",
                "Leaders' snapshots installed.",
                self.snapshots_installed,
            ),
            (
                "snapshots_rejected",
                "Leaders' snapshots refused (damaged, or refused by the state machine).",
                self.snapshots_rejected,
            ),
            ("messages_sent", "Messages handed to the transport.", self.messages_sent),
            (
                "outbound_dropped",
                "Messages dropped because a peer's outbound queue was full (messages or bytes).",
                self.outbound_dropped,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP easyraft_{name}_total {help}");
            let _ = writeln!(out, "# TYPE easyraft_{name}_total counter");
            let _ = writeln!(out, "easyraft_{name}_total{{node=\"{label}\"}} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP easyraft_persist_in_flight_seconds How long the log write in progress has taken (0: none)."
        );
        let _ = writeln!(out, "# TYPE easyraft_persist_in_flight_seconds gauge");
        let _ = writeln!(
            out,
            "easyraft_persist_in_flight_seconds{{node=\"{label}\"}} {}",
            self.persist_in_flight_ms as f64 / 1000.0
        );
        let histograms = [
            (
                "propose_latency",
                "Time from propose to its response.",
                &self.propose_latency,
            ),
            (
                "read_latency",
                "Time from a linearizable read to its answer.",
                &self.read_latency,
            ),
            (
                "persist_latency",
                "Time to persist one Ready, fsync included.",
                &self.persist_latency,
            ),
        ];
        for (name, help, h) in histograms {
            let _ = writeln!(out, "# HELP easyraft_{name}_seconds {help}");
            let _ = writeln!(out, "# TYPE easyraft_{name}_seconds histogram");
            let mut cumulative = 0;
            for (i, n) in h.buckets.iter().enumerate() {
                cumulative += n;
                let le = match Histogram::upper_bound(i) {
                    Some(b) => format!("{}", b.as_secs_f64()),
                    None => "+Inf".to_string(),
                };
                let _ = writeln!(
                    out,
                    "easyraft_{name}_seconds_bucket{{node=\"{label}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = h.sum_micros as f64 / 1e6;
            let _ = writeln!(out, "easyraft_{name}_seconds_sum{{node=\"{label}\"}} {sum}");
            let _ = writeln!(out, "easyraft_{name}_seconds_count{{node=\"{label}\"}} {}", h.count);
        }
        out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// How many finite buckets a [`Histogram`] has; one more catches the rest.
const FINITE_BUCKETS: usize = 20;
/// The first bucket's upper bound; each next bound doubles it.
const FIRST_BOUND_MICROS: u64 = 50;

/// A latency histogram with fixed, doubling buckets: `< 50 µs`, `< 100 µs`, ...
/// `< 26.2 s`, and one for anything slower. Cheap enough to record on every request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// How many latencies were recorded.
    pub count: u64,
    /// Their sum, in microseconds.
    pub sum_micros: u64,
    /// How many fell in each bucket (see [`Histogram::upper_bound`]).
    pub buckets: [u64; FINITE_BUCKETS + 1],
}

impl Histogram {
    /// The exclusive upper bound of bucket `i`; `None` for the last, unbounded one.
    pub fn upper_bound(i: usize) -> Option<Duration> {
        (i < FINITE_BUCKETS).then(|| Duration::from_micros(FIRST_BOUND_MICROS << i))
    }

    fn bucket_of(latency: Duration) -> usize {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        (0..FINITE_BUCKETS)
            .find(|&i| micros < FIRST_BOUND_MICROS << i)
            .unwrap_or(FINITE_BUCKETS)
    }

    /// The mean latency, if any was recorded.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.sum_micros / self.count))
    }

    /// An upper estimate of quantile `q` (0.0–1.0): the upper bound of the bucket
    /// that holds it (`None` if nothing was recorded or it lies in the last bucket).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::upper_bound(i);
            }
        }
        None
    }
}

/// The live, lock-free form of a [`Histogram`].
#[derive(Debug, Default)]
pub(crate) struct AtomicHistogram {
    count: AtomicU64,
    sum_micros: AtomicU64,
    buckets: [AtomicU64; FINITE_BUCKETS + 1],
}

impl AtomicHistogram {
    pub(crate) fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.buckets[Histogram::bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Histogram {
        Histogram {
            count: self.count.load(Ordering::Relaxed),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_double_and_quantiles_are_upper_bounds() {
        let h = AtomicHistogram::default();
        for micros in [10, 49, 50, 99, 100, 1_000, 2_000_000] {
            h.record(Duration::from_micros(micros));
        }
        h.record(Duration::from_secs(3600));
        let s = h.snapshot();
        assert_eq!(s.count, 8);
        assert_eq!(&s.buckets[..3], &[2, 2, 1]);
        assert_eq!(s.buckets[5], 1); // 1 ms: [800 µs, 1.6 ms)
        assert_eq!(s.buckets[16], 1); // 2 s: [1.64 s, 3.28 s)
        assert_eq!(s.buckets[FINITE_BUCKETS], 1);
        assert_eq!(s.quantile(0.25), Some(Duration::from_micros(50)));
        assert_eq!(s.quantile(0.5), Some(Duration::from_micros(100)));
        assert_eq!(s.quantile(0.75), Some(Duration::from_micros(1_600)));
        assert_eq!(s.quantile(1.0), None);
        assert_eq!(Histogram::default().quantile(0.5), None);
        assert_eq!(
            s.mean(),
            Some(Duration::from_micros(
                (10 + 49 + 50 + 99 + 100 + 1_000 + 2_000_000 + 3_600_000_000) / 8
            ))
        );
    }

    #[test]
    fn prometheus_text_has_cumulative_buckets_and_escaped_labels() {
        let c = Counters::default();
        Counters::add(&c.proposals, 3);
        c.persist_latency.record(Duration::from_micros(70));
        c.persist_latency.record(Duration::from_micros(30));
        let text = c.snapshot().to_prometheus("n\"1");
        assert!(text.contains("easyraft_proposals_total{node=\"n\\\"1\"} 3"), "{text}");
        assert!(
            text.contains("easyraft_persist_latency_seconds_bucket{node=\"n\\\"1\",le=\"0.00005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("easyraft_persist_latency_seconds_bucket{node=\"n\\\"1\",le=\"0.0001\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("easyraft_persist_latency_seconds_bucket{node=\"n\\\"1\",le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("easyraft_persist_latency_seconds_count{node=\"n\\\"1\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("easyraft_persist_latency_seconds_sum{node=\"n\\\"1\"} 0.0001"),
            "{text}"
        );
    }
}
