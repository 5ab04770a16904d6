//! The comparison table: per client count, one row per system with min/median/max of
//! commits/s and p99 over the rounds, then the ratios of medians.

use std::fmt::Write;

use serde_json::Value;

use super::CompareOptions;

/// One run's figures, from `cluster_load`'s JSON line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Acknowledged proposals per second in the measured window.
    pub commits_per_sec: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Every acknowledged proposal, warm-up included.
    pub total_ops: u64,
    /// Real fsyncs per applied entry on the leader (easyraft-file only).
    pub fsyncs_leader: Option<f64>,
    /// The same on a follower (average).
    pub fsyncs_follower: Option<f64>,
}

impl Sample {
    /// Reads the fields this table uses; missing ones are zero / `None`.
    pub fn from_json(v: &Value) -> Self {
        let f = |k: &str| v.get(k).and_then(Value::as_f64);
        Sample {
            commits_per_sec: f("commits_per_sec").unwrap_or_default(),
            p50_us: f("p50_us").unwrap_or_default(),
            p99_us: f("p99_us").unwrap_or_default(),
            total_ops: v.get("total_ops").and_then(Value::as_u64).unwrap_or_default(),
            fsyncs_leader: f("fsyncs_per_entry_leader"),
            fsyncs_follower: f("fsyncs_per_entry_follower"),
        }
    }
}

/// Every round of one system at one client count.
#[derive(Clone, Debug)]
pub struct Row {
    /// The system's label.
    pub label: String,
    /// Concurrent proposers.
    pub clients: usize,
    /// One per round.
    pub samples: Vec<Sample>,
}

/// (min, median, max); the median of an even count is the mean of the middle two.
pub fn spread(mut xs: Vec<f64>) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    (xs[0], median, xs[n - 1])
}

impl Row {
    fn of(&self, f: impl Fn(&Sample) -> f64) -> (f64, f64, f64) {
        spread(self.samples.iter().map(f).collect())
    }

    fn median_rate(&self) -> f64 {
        self.of(|s| s.commits_per_sec).1
    }
}

/// The ratios printed under each table: (numerator, denominator) labels, each pair
/// printed when both ran. The baseline pairs are added by the caller's labels.
const RATIOS: [(&str, &str); 2] = [("easyraft", "openraft10"), ("easyraft", "openraft09")];

/// The whole report.
pub fn render(rows: &[Row], clients: &[usize], opts: &CompareOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n3 nodes in one process, in-memory network, {} tokio workers, 16-byte commands; {} rounds of {} s (+{} s warm-up), interleaved",
        opts.workers, opts.rounds, opts.secs, opts.warmup
    );
    for &c in clients {
        let here: Vec<&Row> = rows.iter().filter(|r| r.clients == c).collect();
        let _ = writeln!(out, "\n{c} clients");
        let _ = writeln!(
            out,
            "  {:<24} {:>27}  {:>9}  {:>26}  {:>13}",
            "system", "commits/s min/median/max", "p50 ms", "p99 ms min/median/max", "fsyncs/entry"
        );
        for r in &here {
            let (lo, mid, hi) = r.of(|s| s.commits_per_sec);
            let (_, p50, _) = r.of(|s| s.p50_us / 1e3);
            let (plo, pmid, phi) = r.of(|s| s.p99_us / 1e3);
            let fsyncs = match r.samples.iter().filter_map(|s| s.fsyncs_leader).next_back() {
                Some(_) => {
                    let (_, l, _) = spread(r.samples.iter().filter_map(|s| s.fsyncs_leader).collect());
                    let (_, f, _) = spread(r.samples.iter().filter_map(|s| s.fsyncs_follower).collect());
                    format!("L {l:.3} F {f:.3}")
                }
                None => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {:<24} {:>8.0} {:>9.0} {:>8.0}  {:>9.3}  {:>8.3} {:>8.3} {:>8.3}  {:>13}",
                r.label, lo, mid, hi, p50, plo, pmid, phi, fsyncs
            );
        }
        let find = |label: &str| here.iter().find(|r| r.label == label);
        let mut pairs: Vec<(String, String)> = RATIOS.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        // Before/after: every `system@rev` row against `system`.
        for r in &here {
            if let Some((system, _)) = r.label.split_once('@') {
                pairs.push((system.to_owned(), r.label.clone()));
            }
        }
        for (a, b) in pairs {
            if let (Some(ra), Some(rb)) = (find(&a), find(&b)) {
                let _ = writeln!(
                    out,
                    "  ratio {a} ÷ {b}: {:.2}× commits/s (medians)",
                    ra.median_rate() / rb.median_rate().max(1e-9)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_of_odd_and_even_counts() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), (1.0, 2.0, 3.0));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]), (1.0, 2.5, 4.0));
        assert_eq!(spread(vec![]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn sample_reads_cluster_load_json() {
        let v: Value = serde_json::from_str(
            r#"{"commits_per_sec":10.5,"p50_us":100.0,"p99_us":900.0,"total_ops":42,"fsyncs_per_entry_leader":0.5,"fsyncs_per_entry_follower":null}"#,
        )
        .unwrap();
        let s = Sample::from_json(&v);
        assert_eq!(s.commits_per_sec, 10.5);
        assert_eq!(s.total_ops, 42);
        assert_eq!((s.fsyncs_leader, s.fsyncs_follower), (Some(0.5), None));
    }
}
