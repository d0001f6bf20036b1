//! One installer at a time for the tools the tests cache outside the clone
//! (`~/.cache/rusty-coin`). nextest runs each test in a process of its own,
//! so on a fresh machine several tests install the same tools at once; one
//! that finished last used to delete the directory another had just put in
//! place and was already running from (hardhat: "Cannot find module").

use std::{fs, path::Path};

/// Blocks until this process holds `<parent>/<name>.lock`; the lock ends
/// when the returned file is dropped (or the process exits). Callers check
/// their stamp again once they hold it: the install they waited for may be
/// the one they need.
pub fn install_lock(parent: &Path, name: &str) -> fs::File {
    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
    let path = parent.join(format!("{name}.lock"));
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}
