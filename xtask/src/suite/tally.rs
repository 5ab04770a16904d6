//! What a test runner printed, read line by line: the passed, failed and ignored
//! counts and the names of the failing tests, from `cargo test`, cargo-nextest and
//! criterion in test mode.

/// Passed and failed counts of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (or timed out).
    pub failed: u64,
    /// Tests that were ignored or skipped (the suite has none; shown when not zero).
    pub ignored: u64,
}

impl Counts {
    /// Adds `other` to these counts.
    pub(super) fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }
}

/// What a test runner printed, read line by line.
#[derive(Debug, Default)]
pub struct OutputTally {
    /// The counts seen so far.
    pub counts: Counts,
    /// Names of failing tests (as the runner printed them).
    pub failures: Vec<String>,
    /// The bench criterion is testing (`Testing <name>`), until its `Success`.
    pub(super) testing: Option<String>,
    /// The output is nextest's: only its summary and FAIL lines count (the output of
    /// a failing test, which nextest shows, has libtest's own lines in it).
    nextest: bool,
}

impl OutputTally {
    /// A tally of nextest's output.
    pub fn for_nextest() -> Self {
        OutputTally {
            nextest: true,
            ..OutputTally::default()
        }
    }

    /// Reads one line of `cargo test`, `cargo nextest` or criterion (`--test`) output.
    pub fn line(&mut self, line: &str) {
        let line = line.trim();
        // criterion in test mode: "Testing <bench>" then "Success" (or a panic).
        if let Some(name) = line.strip_prefix("Testing ") {
            if let Some(unfinished) = self.testing.replace(name.to_string()) {
                self.counts.failed += 1;
                self.failures.push(unfinished);
            }
            return;
        }
        if line == "Success" {
            if self.testing.take().is_some() {
                self.counts.passed += 1;
            }
            return;
        }
        // cargo test: "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; ..."
        if self.nextest && (line.starts_with("test result: ") || line.starts_with("test ")) {
            return;
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let part = part.trim().trim_start_matches("ok.").trim_start_matches("FAILED.");
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next()) {
                    if let Ok(n) = n.parse::<u64>() {
                        match what {
                            "passed" => self.counts.passed += n,
                            "failed" => self.counts.failed += n,
                            "ignored" => self.counts.ignored += n,
                            _ => {}
                        }
                    }
                }
            }
            return;
        }
        // cargo test: "test some::name ... FAILED"
        if let Some(name) = line.strip_prefix("test ").and_then(|l| l.strip_suffix(" ... FAILED")) {
            self.failures.push(name.to_string());
            return;
        }
        // nextest: "Summary [  12.345s] 384 tests run: 380 passed, 3 failed, 1 timed out, 2 skipped"
        if line.starts_with("Summary [") {
            if let Some((_, tail)) = line.split_once("tests run:").or_else(|| line.split_once("test run:")) {
                for part in tail.split(',') {
                    let mut words = part.split_whitespace();
                    if let (Some(n), Some(what)) = (words.next(), words.next()) {
                        if let Ok(n) = n.parse::<u64>() {
                            match what {
                                "passed" => self.counts.passed += n,
                                "failed" | "timed" => self.counts.failed += n,
                                "skipped" => self.counts.ignored += n,
                                _ => {}
                            }
                        }
                    }
                }
            }
            return;
        }
        // nextest: "FAIL [   1.234s] crate::binary some::name" / "TIMEOUT [ 300.0s] ..."
        for tag in ["FAIL [", "TIMEOUT ["] {
            if let Some(rest) = line.strip_prefix(tag) {
                if let Some((_, name)) = rest.split_once(']') {
                    // Drop nextest's progress counter, "( 55/231) ".
                    let name = name.trim();
                    let name = match name.strip_prefix('(').and_then(|n| n.split_once(')')) {
                        Some((_, rest)) => rest.trim(),
                        None => name,
                    };
                    let name = name.to_string();
                    if !self.failures.contains(&name) {
                        self.failures.push(name);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_test_result_lines_are_summed_and_failures_named() {
        let mut t = OutputTally::default();
        t.line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.line("test a::b ... FAILED");
        t.line("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s");
        assert_eq!(
            t.counts,
            Counts {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
        assert_eq!(t.failures, vec!["a::b".to_string()]);
    }

    #[test]
    fn nextest_summary_and_fail_lines_are_read() {
        let mut t = OutputTally::for_nextest();
        t.line("        FAIL [   1.234s] ( 55/231) raft-sim::sim_safety campaign");
        // A failing test's own output, which nextest shows: not counted again.
        t.line("test campaign ... FAILED");
        t.line("test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 9 filtered out; finished in 0.1s");
        t.line("        FAIL [   1.234s] raft-sim::sim_safety campaign");
        t.line("     TIMEOUT [ 300.001s] xtask::chaos chaos_passes");
        t.line("     Summary [  12.345s] 384 tests run: 380 passed, 3 failed, 1 timed out, 2 skipped");
        assert_eq!(
            t.counts,
            Counts {
                passed: 380,
                failed: 4,
                ignored: 2
            }
        );
        assert_eq!(
            t.failures,
            vec![
                "raft-sim::sim_safety campaign".to_string(),
                "xtask::chaos chaos_passes".to_string()
            ]
        );
    }

    #[test]
    fn criterion_test_mode_counts_each_bench_that_reports_success() {
        let mut t = OutputTally::default();
        for l in [
            "Testing core/step/64",
            "Success",
            "Testing cluster/propose",
            "thread 'main' panicked",
            "Testing ws/x",
            "Success",
        ] {
            t.line(l);
        }
        assert_eq!(
            t.counts,
            Counts {
                passed: 2,
                failed: 1,
                ignored: 0
            }
        );
        assert_eq!(t.failures, vec!["cluster/propose".to_string()]);
    }
}
