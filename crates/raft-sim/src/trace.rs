//! The recent-event trace: the last few hundred things that happened (deliveries,
//! Readys, faults, client calls), one line each, printed when a check fails. It is
//! off during ordinary runs (formatting every event would dominate the cost); a
//! failing seed is replayed with it on, which reproduces the same run exactly.

use std::collections::VecDeque;

/// A bounded ring of event lines.
#[derive(Debug, Default)]
pub struct Trace {
    cap: usize,
    lines: VecDeque<String>,
}

impl Trace {
    /// A trace keeping the last `cap` lines; `0` records nothing.
    pub fn new(cap: usize) -> Self {
        Trace {
            cap,
            lines: VecDeque::with_capacity(cap.min(4096)),
        }
    }

    /// Whether lines are being recorded.
    pub fn enabled(&self) -> bool {
        self.cap > 0
    }

    /// Records a line at `step`; `line` is only called when the trace is on.
    pub fn record(&mut self, step: u64, line: impl FnOnce() -> String) {
        if self.cap == 0 {
            return;
        }
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(format!("[{step:>5}] {}", line()));
    }

    /// The recorded lines, oldest first.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }
}
