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
    fs,
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

/// Kept between runs, beside the shared target directory.
fn venv_dir() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home)
        .join(".cache")
        .join("rusty-coin")
        .join("rpc-compat-venv")
}

/// FNV-1a, 64 bits: a stable hash of requirements.txt for the venv's stamp.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `python3 --version`, or a failure saying what to install.
fn python3_version() -> String {
    let out = Command::new("python3").arg("--version").output();
    match out {
        Ok(out) if out.status.success() => {
            // Python 3 prints its version on stdout (2.x on stderr).
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            text.trim().to_string()
        }
        _ => panic!(
            "python3 is not installed, and the RPC client-compatibility test runs real Python \
             clients: run `make deps` (scripts/install-deps.sh installs python3 and python3-venv \
             on Debian), or `sudo apt-get install python3 python3-venv`"
        ),
    }
}

/// The venv's python, with the pinned libraries installed. Reused while
/// requirements.txt and the system python3 are unchanged (the stamp file
/// holds a hash of one and the version of the other); otherwise rebuilt
/// beside it and renamed into place, so an interrupted install is never
/// taken for a complete one.
fn venv_python() -> PathBuf {
    let venv = venv_dir();
    let requirements = compat_dir().join("requirements.txt");
    let pinned = fs::read(&requirements)
        .unwrap_or_else(|e| panic!("reading {}: {e}", requirements.display()));
    let stamp = format!(
        "requirements.txt fnv1a64 {:016x}\n{}\n",
        fnv1a64(&pinned),
        python3_version()
    );
    let stamp_name = "rpc-compat.stamp";
    let python = venv.join("bin").join("python");
    let ready = |dir: &Path| {
        fs::read_to_string(dir.join(stamp_name)).ok().as_deref() == Some(stamp.as_str())
            && dir.join("bin").join("python").exists()
    };
    if ready(&venv) {
        return python;
    }

    let parent = venv.parent().expect("venv parent");
    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
    let tmp = parent.join(format!("rpc-compat-venv.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);

    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&tmp)
        .output()
        .expect("run python3 -m venv");
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        panic!(
            "`python3 -m venv` failed, so the RPC client libraries cannot be installed: install \
             Debian's python3-venv (`make deps`, or `sudo apt-get install python3-venv`).\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let out = Command::new(tmp.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--timeout",
            "30",
            "--retries",
            "2",
            "-r",
        ])
        .arg(&requirements)
        .output()
        .expect("run pip");
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        panic!(
            "could not install the pinned RPC client libraries from PyPI (https://pypi.org): \
             `pip install -r tests/rpc-compat/requirements.txt` failed. Is PyPI reachable from \
             this machine (or a mirror set with PIP_INDEX_URL)? The client-compatibility test \
             needs them and does not skip.\npip said:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::write(tmp.join(stamp_name), &stamp).expect("write the venv stamp");

    let _ = fs::remove_dir_all(&venv);
    if let Err(e) = fs::rename(&tmp, &venv) {
        // Another run put its venv in place first: use it when it is ready.
        let _ = fs::remove_dir_all(&tmp);
        assert!(ready(&venv), "moving the venv into {}: {e}", venv.display());
    }
    python
}

#[test]
fn real_bitcoin_and_dash_rpc_clients_work_unmodified() {
    let python = venv_python();

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
