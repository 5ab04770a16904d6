//! Protocol scenarios as data: every file in `tests/testdata/` is a script of
//! commands for real `RawNode`s, each followed by the output it must produce (see
//! docs/testing.md, "Protocol scenarios as data"). `REWRITE=1 cargo test -p raft-core
//! --test datadriven` rewrites the expected outputs in place.

#[path = "datadriven/env.rs"]
mod env;
#[path = "datadriven/runner.rs"]
mod runner;

use std::path::PathBuf;

/// Runs every testdata file, each in a fresh environment, and reports every file
/// that fails (not only the first).
#[test]
fn testdata() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no testdata in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        let mut e = env::Env::new();
        if let Err(msg) = runner::run_file(f, |c| e.run(c)) {
            failures.push(msg);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} testdata files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// The runner itself: a changed expected line fails with a diff naming the line, a
/// missing output fails, and a rewrite restores the file.
#[test]
fn runner_fails_on_a_changed_line_and_rewrites_it() {
    let good = "# a comment\necho a b\n----\na\nb\n\necho c\n----\nc\n";
    let echo = |c: &runner::TestCase| match c.cmd.as_str() {
        "echo" => Ok(c.positional().join("\n")),
        other => Err(format!("unknown command {other:?}")),
    };
    assert_eq!(runner::check("t.txt", good, false, echo).unwrap(), good);

    let bad = good.replace("a\nb\n", "a\nX\n");
    let err = runner::check("t.txt", &bad, false, echo).unwrap_err();
    assert!(err.contains("t.txt:2: `echo a b`"), "{err}");
    assert!(err.contains("- X") && err.contains("+ b"), "{err}");
    assert!(!err.contains("t.txt:7"), "{err}");
    assert_eq!(runner::check("t.txt", &bad, true, echo).unwrap(), good);

    let missing = "echo a\n";
    let err = runner::check("t.txt", missing, false, echo).unwrap_err();
    assert!(err.contains("t.txt:1: `echo a` has no expected output"), "{err}");
    assert_eq!(
        runner::check("t.txt", missing, true, echo).unwrap(),
        "echo a\n----\na\n"
    );

    let blank = "echo a\n----\n----\na\n\nb\n----\n----\n";
    let two_paragraphs = |_: &runner::TestCase| Ok("a\n\nb".to_string());
    assert_eq!(runner::check("t.txt", blank, false, two_paragraphs).unwrap(), blank);
    assert_eq!(runner::check("t.txt", "echo a\n", true, two_paragraphs).unwrap(), blank);

    // A broken script fails even when rewriting.
    let typo = "echo a\n----\na\n\necoh b\n----\nb\n";
    let err = runner::check("t.txt", typo, true, echo).unwrap_err();
    assert!(err.contains("t.txt:5: `ecoh b` failed: unknown command"), "{err}");
}
