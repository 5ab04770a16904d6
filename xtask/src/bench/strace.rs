//! `--strace`: syscalls per acknowledged proposal, from `strace -f -c`'s summary. The
//! thread handoffs a runtime makes per proposal show up as `futex` (a parked thread
//! woken), `epoll_wait` (a worker gone idle) and `write` (an eventfd wake-up).

use std::collections::BTreeMap;
use std::fmt::Write;

/// The syscalls shown in the table, in this order; `total` is every syscall.
pub const SHOWN: [&str; 4] = ["futex", "epoll_wait", "write", "total"];

/// Calls per syscall from `strace -c` output; the `epoll_*wait*` variants count as
/// `epoll_wait`, and `total` is the summary's total line.
pub fn parse(summary: &str) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for line in summary.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        // `% time  seconds  usecs/call  calls  [errors]  syscall`
        let (Some(first), Some(name)) = (t.first(), t.last()) else {
            continue;
        };
        if t.len() < 5 || first.parse::<f64>().is_err() {
            continue;
        }
        let Ok(n) = t[3].parse::<u64>() else { continue };
        let name = if name.starts_with("epoll_") && name.contains("wait") {
            "epoll_wait"
        } else {
            name
        };
        *calls.entry(name.to_owned()).or_insert(0) += n;
    }
    calls
}

/// One line per (system, clients): each shown syscall's calls per op.
pub fn render(runs: &[(String, usize, u64, BTreeMap<String, u64>)]) -> String {
    let mut out = String::from("\nsyscalls per acknowledged proposal (strace -f -c, one run each, warm-up included)\n");
    let _ = write!(out, "  {:<24} {:>7}", "system", "clients");
    for s in SHOWN {
        let _ = write!(out, " {s:>11}");
    }
    out.push('\n');
    for (label, clients, ops, calls) in runs {
        let _ = write!(out, "  {label:<24} {clients:>7}");
        for s in SHOWN {
            let n = calls.get(s).copied().unwrap_or(0);
            let _ = write!(out, " {:>11.3}", n as f64 / (*ops).max(1) as f64);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary_with_and_without_errors_column() {
        let s = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 95.04    2.079045          13    150212     27064 futex
  3.00    0.108453           9     11250           epoll_wait
  1.96    0.008453           9      1000           epoll_pwait
------ ----------- ----------- --------- --------- ----------------
100.00    2.187498          13    162462     27064 total
";
        let c = parse(s);
        assert_eq!(c["futex"], 150_212);
        assert_eq!(c["epoll_wait"], 12_250);
        assert_eq!(c["total"], 162_462);
    }
}
