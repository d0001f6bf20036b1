//! Real Bitcoin RPC clients against a real node: installs the client
//! libraries pinned in `tests/rpc-compat/requirements.txt` from PyPI into a
//! virtual environment and runs `tests/rpc-compat/compat.py` against a dev
//! masternode with one peer. compat.py drives the README flow, every read
//! method, errors and batches through the libraries unmodified, and checks
//! each result against Bitcoin Core's and Dash Core's documented fields.
//!
//! Needs python3 with its venv module, and PyPI (or a mirror set with
//! `PIP_INDEX_URL`) the first time: without them the test fails and says
//! what is missing; it never skips.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use crate::harness::{free_port, NodeProcess, BIN};

/// `tests/rpc-compat` of the workspace.
fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("tests")
        .join("rpc-compat")
}

#[test]
fn real_bitcoin_and_dash_rpc_clients_work_unmodified() {
    let python = crate::pyvenv::venv_python("rpc-compat", &compat_dir().join("requirements.txt"));

    // The node under test: a masternode (for `masternode status`), mining
    // only on demand, listening for its peer on a known loopback port.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("operator.key");
    let out = Command::new(BIN)
        .args(["masternode", "genkey", "--out"])
        .arg(&key)
        .output()
        .expect("run rusty-cli masternode genkey");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let operator_pubkey = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let node = NodeProcess::start_raw(
        dir.path(),
        free_port(),
        &[
            "--no-mine",
            "--listen",
            &listen,
            "--no-mdns",
            "--masternode",
            "--operator-key",
            key.to_str().expect("utf-8 path"),
        ],
    );

    // One peer, so that getpeerinfo has an entry to check.
    let peer_dir = tempfile::tempdir().expect("tempdir");
    let peer = NodeProcess::start_raw(
        peer_dir.path(),
        free_port(),
        &[
            "--no-mine",
            "--no-wallet",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--bootnode",
            &listen,
        ],
    );

    let out = Command::new(&python)
        .arg(compat_dir().join("compat.py"))
        .arg("--url")
        .arg(format!("http://127.0.0.1:{}", node.port))
        .arg("--cookie")
        .arg(dir.path().join("dev").join(".cookie"))
        .args(["--operator-pubkey", &operator_pubkey])
        .args(["--min-peers", "1", "--deadline", "600", "--verbose"])
        // No __pycache__ in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run compat.py");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Shown with `--no-capture`: the per-check lines of a passing run.
    let _ = writeln!(std::io::stdout(), "{report}");
    assert!(
        out.status.success(),
        "real RPC clients found mismatches with Bitcoin Core / Dash Core \
         (tests/rpc-compat/compat.py; the fields are in core_fields.py):\n{report}"
    );

    peer.stop();
    node.stop();
}
