//! A Python virtual environment with pinned packages, kept between runs
//! beside the shared target directory: the real client libraries the
//! compatibility tests drive (`rpc_compat.rs`, `ui_browser.rs`).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::install_lock::install_lock;

/// Kept between runs, beside the shared target directory.
fn venv_dir(name: &str) -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home)
        .join(".cache")
        .join("rusty-coin")
        .join(format!("{name}-venv"))
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
            "python3 is not installed, and this test runs real Python clients: run `make deps` (scripts/install-deps.sh installs python3 and python3-venv \
             on Debian), or `sudo apt-get install python3 python3-venv`"
        ),
    }
}

/// The venv's python, with the pinned libraries installed. Reused while
/// requirements.txt and the system python3 are unchanged (the stamp file
/// holds a hash of one and the version of the other); otherwise rebuilt
/// beside it and renamed into place, so an interrupted install is never
/// taken for a complete one.
pub fn venv_python(name: &str, requirements: &Path) -> PathBuf {
    let venv = venv_dir(name);
    let pinned = fs::read(requirements)
        .unwrap_or_else(|e| panic!("reading {}: {e}", requirements.display()));
    let stamp = format!(
        "requirements.txt fnv1a64 {:016x}\n{}\n",
        fnv1a64(&pinned),
        python3_version()
    );
    let stamp_name = format!("{name}.stamp");
    let python = venv.join("bin").join("python");
    let ready = |dir: &Path| {
        fs::read_to_string(dir.join(&stamp_name)).ok().as_deref() == Some(stamp.as_str())
            && dir.join("bin").join("python").exists()
    };
    if ready(&venv) {
        return python;
    }

    let parent = venv.parent().expect("venv parent");
    let _installing = install_lock(parent, &format!("{name}-venv"));
    if ready(&venv) {
        return python;
    }
    let tmp = parent.join(format!("{name}-venv.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);

    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&tmp)
        .output()
        .expect("run python3 -m venv");
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        panic!(
            "`python3 -m venv` failed, so the pinned Python packages cannot be installed: install \
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
        .arg(requirements)
        .output()
        .expect("run pip");
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        panic!(
            "could not install the pinned Python packages from PyPI (https://pypi.org): \
             `pip install -r {}` failed. Is PyPI reachable from this machine (or a mirror set \
             with PIP_INDEX_URL)? The test needs them and does not skip.\npip said:\n{}{}",
            requirements.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::write(tmp.join(&stamp_name), &stamp).expect("write the venv stamp");

    let _ = fs::remove_dir_all(&venv);
    if let Err(e) = fs::rename(&tmp, &venv) {
        // Another run put its venv in place first: use it when it is ready.
        let _ = fs::remove_dir_all(&tmp);
        assert!(ready(&venv), "moving the venv into {}: {e}", venv.display());
    }
    python
}
