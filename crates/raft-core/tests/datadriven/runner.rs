//! A small data-driven test runner: a file of commands, each followed by the output
//! it must produce.
//!
//! ```text
//! # A comment line.
//! command pos1 key=value list=(1,2,3)
//! ----
//! expected output
//! up to the next blank line
//! ```
//!
//! An output that contains blank lines is written between doubled separators
//! (`----` / `----` before it, `----` / `----` after it). A mismatch fails the file
//! with a line diff naming `file:line` of the command; with `REWRITE=1` in the
//! environment the file is rewritten in place with the actual outputs instead.

#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::path::Path;

/// One argument: `key`, `key=value` or `key=(v1,v2,…)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    pub key: String,
    pub vals: Vec<String>,
}

/// One command of a file, with the output it expects.
#[derive(Clone, Debug)]
pub struct TestCase {
    /// The 1-based line of the command.
    pub line: usize,
    pub cmd: String,
    pub args: Vec<Arg>,
    /// The command's own source line, kept verbatim for rewriting.
    pub source: String,
    /// `None` when the command has no `----` block at all.
    pub expected: Option<String>,
}

impl TestCase {
    /// The values of `key=…`, if given.
    pub fn vals(&self, key: &str) -> Option<&[String]> {
        self.args.iter().find(|a| a.key == key).map(|a| &a.vals[..])
    }

    /// The positional arguments (those without `=`).
    pub fn positional(&self) -> Vec<&str> {
        self.args
            .iter()
            .filter(|a| a.vals.is_empty())
            .map(|a| a.key.as_str())
            .collect()
    }
}

enum Chunk {
    /// A comment or blank line between commands.
    Verbatim(String),
    Case(usize),
}

struct Parsed {
    chunks: Vec<Chunk>,
    cases: Vec<TestCase>,
}

fn parse_args(line: &str, lineno: usize) -> Result<(String, Vec<Arg>), String> {
    // Split on whitespace outside parentheses.
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in line.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if depth != 0 {
        return Err(format!("line {lineno}: unbalanced parentheses in {line:?}"));
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let mut it = tokens.into_iter();
    let cmd = it.next().ok_or_else(|| format!("line {lineno}: empty command"))?;
    let args = it
        .map(|t| match t.split_once('=') {
            None => Arg {
                key: t,
                vals: Vec::new(),
            },
            Some((k, v)) => {
                let v = v.strip_prefix('(').and_then(|v| v.strip_suffix(')')).unwrap_or(v);
                Arg {
                    key: k.to_string(),
                    vals: v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                }
            }
        })
        .collect();
    Ok((cmd, args))
}

fn parse(text: &str) -> Result<Parsed, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut chunks = Vec::new();
    let mut cases = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim().is_empty() || l.starts_with('#') {
            chunks.push(Chunk::Verbatim(l.to_string()));
            i += 1;
            continue;
        }
        let (cmd, args) = parse_args(l, i + 1)?;
        let mut case = TestCase {
            line: i + 1,
            cmd,
            args,
            source: l.to_string(),
            expected: None,
        };
        i += 1;
        if i < lines.len() && lines[i] == "----" {
            i += 1;
            let mut out = Vec::new();
            if i < lines.len() && lines[i] == "----" {
                // Doubled separators: the output ends at `----` followed by `----`.
                i += 1;
                loop {
                    if i >= lines.len() {
                        return Err(format!("line {}: unterminated `----` block", case.line));
                    }
                    if lines[i] == "----" && lines.get(i + 1) == Some(&"----") {
                        i += 2;
                        break;
                    }
                    out.push(lines[i]);
                    i += 1;
                }
            } else {
                while i < lines.len() && !lines[i].trim().is_empty() {
                    out.push(lines[i]);
                    i += 1;
                }
            }
            case.expected = Some(out.join("\n"));
        }
        chunks.push(Chunk::Case(cases.len()));
        cases.push(case);
    }
    Ok(Parsed { chunks, cases })
}

fn render(parsed: &Parsed, outputs: &[String]) -> String {
    let mut s = String::new();
    for (n, chunk) in parsed.chunks.iter().enumerate() {
        match chunk {
            Chunk::Verbatim(l) => {
                s.push_str(l);
                s.push('\n');
            }
            Chunk::Case(i) => {
                let out = outputs[*i].trim_end_matches('\n');
                s.push_str(&parsed.cases[*i].source);
                s.push('\n');
                if out.lines().any(|l| l.trim().is_empty()) {
                    let _ = write!(s, "----\n----\n{out}\n----\n----\n");
                } else {
                    let _ = write!(s, "----\n{out}\n");
                }
                // Keep a blank line between a command's output and what follows.
                if !matches!(parsed.chunks.get(n + 1), None | Some(Chunk::Verbatim(_))) {
                    s.push('\n');
                }
            }
        }
    }
    s
}

/// A line diff (longest common subsequence): ` ` both, `-` expected only, `+` actual only.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}

/// Whether `REWRITE` is set (to anything but empty or `0`).
pub fn rewrite_requested() -> bool {
    std::env::var("REWRITE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs every command of the file `text` (named `name` in failures) through `run`,
/// in order, and compares outputs. Returns the rewritten file when `rewrite`, else
/// `Err` with every mismatch.
pub fn check(
    name: &str,
    text: &str,
    rewrite: bool,
    mut run: impl FnMut(&TestCase) -> Result<String, String>,
) -> Result<String, String> {
    let parsed = parse(text).map_err(|e| format!("{name}: {e}"))?;
    let mut outputs = Vec::new();
    let mut failures = String::new();
    for case in &parsed.cases {
        let mut actual = match run(case) {
            Ok(out) => out,
            Err(e) => {
                // A broken script, not a different output: fails even under REWRITE.
                let _ = write!(failures, "\n{name}:{}: `{}` failed: {e}\n", case.line, case.source);
                outputs.push(String::new());
                continue;
            }
        };
        let trimmed = actual.trim_end_matches('\n').len();
        actual.truncate(trimmed);
        if actual.is_empty() {
            actual.push_str("ok");
        }
        match &case.expected {
            _ if rewrite => {}
            None => {
                let _ = write!(
                    failures,
                    "\n{name}:{}: `{}` has no expected output (run with REWRITE=1); it printed:\n{actual}\n",
                    case.line, case.source
                );
            }
            Some(exp) if *exp != actual => {
                let _ = write!(
                    failures,
                    "\n{name}:{}: `{}` printed something else (- expected, + actual):\n{}",
                    case.line,
                    case.source,
                    diff(exp, &actual)
                );
            }
            Some(_) => {}
        }
        outputs.push(actual);
    }
    if failures.is_empty() {
        Ok(render(&parsed, &outputs))
    } else {
        Err(failures)
    }
}

/// Runs the file at `path` with a fresh `run` state; rewrites it under `REWRITE=1`.
pub fn run_file(path: &Path, run: impl FnMut(&TestCase) -> Result<String, String>) -> Result<(), String> {
    // Named relative to the crate (the test's working directory) when possible.
    let cwd = std::env::current_dir().unwrap_or_default();
    let name = path.strip_prefix(&cwd).unwrap_or(path).display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let rewrite = rewrite_requested();
    let out = check(&name, &text, rewrite, run)?;
    if rewrite && out != text {
        std::fs::write(path, out).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}
