//! A client nobody here wrote: Python's `websockets` package (`tests/python/ws_client.py`)
//! speaks the JSON envelope to a real node, gets well-formed `Ack`s, sends every kind
//! of bad input and gets an `Error` reply or a clean close for each, and finds the node
//! still serving afterwards. Then this test checks that none of the bad input reached
//! the core: every bad message carried a term of 1000 or more, and the node's term is
//! exactly the good messages' term.
//!
//! Needs a Python with `websockets`: `$EASYRAFT_PYTHON` (the virtual environment that
//! `cargo xtask test` makes under target/), else `python3` on the PATH. Without it the
//! test fails and says so: it is never skipped.

mod support;

use std::process::Command;
use std::time::Duration;

use raft_core::Role;
use support::*;

const TERM: u64 = 3;
const MAX_BYTES: usize = 64 * 1024;

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/ws_client.py")
}

/// `$EASYRAFT_PYTHON`, else `python3`.
fn python() -> std::ffi::OsString {
    std::env::var_os("EASYRAFT_PYTHON").unwrap_or_else(|| "python3".into())
}

fn require_websockets() {
    let python = python();
    let probe = Command::new(&python).args(["-c", "import websockets"]).output();
    let shown = python.to_string_lossy();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "this test runs a Python WebSocket client and needs the `websockets` package, which \
             {shown} cannot import ({}). Run the suite with `cargo xtask test` (README.md), which \
             makes a virtual environment with it and sets EASYRAFT_PYTHON, or install it yourself.",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "this test runs a Python WebSocket client and needs Python ({shown}: {e}). Install \
             Python 3, then run `cargo xtask test` (README.md)."
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_gets_acks_errors_and_clean_closes_and_garbage_never_reaches_the_core() {
    require_websockets();
    let mut cfg = ws_config("py-cluster").with_token("py-secret");
    cfg.max_message_bytes = MAX_BYTES;
    let (node, addr) = lone_follower(cfg).await;
    assert_eq!(node.view().term, 0, "a lone follower with pre-vote keeps term 0");

    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script())
            .args(["--addr", &addr.to_string()])
            .args(["--token", "py-secret", "--node", "node1", "--peer", "node2"])
            .args(["--cluster", "py-cluster"])
            .args(["--max-bytes", &MAX_BYTES.to_string(), "--term", &TERM.to_string()])
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python client failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("checks ok, 0 failed"),
        "unexpected output:\n{stdout}\n{stderr}"
    );

    // The good messages reached the core (term 0 -> 3); none of the bad ones did (they
    // all carried term >= 1000), and nothing was committed.
    let view = node.view();
    assert!(view.running, "the node still runs");
    assert_eq!(view.term, TERM, "only the good envelopes reached the core: {view:?}");
    assert_eq!(view.commit, 0, "{view:?}");
    assert_ne!(view.role, Role::Leader, "{view:?}");
    let status = tokio::time::timeout(Duration::from_secs(10), node.status())
        .await
        .expect("the node task answers")
        .expect("status");
    assert_eq!(status.term, TERM);
    // The port still answers (a plain GET gets its short 404: it carries Raft only).
    let (code, body) = http_get(addr, "/health").await.unwrap();
    assert_eq!(code, 404, "{body}");
    node.shutdown().await;
}
