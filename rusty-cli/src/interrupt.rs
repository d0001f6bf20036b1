//! Ending long CLI work cleanly on Ctrl-C (SIGINT) or SIGTERM: the first
//! signal sets a flag the work checks (a broadcast ends on the node so its
//! viewers' playlists end, ffmpeg is asked to stop, scratch files go); a
//! second one exits at once, killing the children and removing the scratch
//! directories registered with [`kill_on_quit`] and [`remove_on_quit`].

use std::{
    path::{Path, PathBuf},
    process::{Child, ExitStatus},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

/// How long ffmpeg gets to finish its outputs after being asked to stop,
/// before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long the work may take to end after the first signal before the
/// process exits anyway.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Set by the first SIGINT or SIGTERM from now on; `doing` is what the
/// process says it does then ("ending the broadcast"). A second signal
/// exits at once (130 after SIGINT, 143 after SIGTERM), and so does
/// [`GIVE_UP`] after the first if the process is still running. A child in the
/// same process group (ffmpeg) gets a terminal's Ctrl-C itself; see
/// [`wait_child`] for one that does not.
pub fn interrupt_flag(doing: &'static str) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let (ready, registered) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let signals = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                );
                let _ = ready.send(());
                let (Ok(mut int), Ok(mut term)) = signals else {
                    return;
                };
                let mut next = async || {
                    tokio::select! {
                        Some(()) = int.recv() => Some(130),
                        Some(()) = term.recv() => Some(143),
                        else => None,
                    }
                };
                let Some(code) = next().await else {
                    return;
                };
                set.store(true, Ordering::Relaxed);
                eprintln!("\n{doing} (Ctrl-C again to quit at once)");
                // Work blocked on its input (a stalled pipe) never looks
                // at the flag: it gets a bound, as a signal used to end
                // the process at once.
                tokio::select! {
                    _ = next() => {}
                    () = tokio::time::sleep(GIVE_UP) => {
                        eprintln!("still not done {GIVE_UP:?} later: quitting");
                    }
                }
                clean_up_for_quit();
                std::process::exit(code);
            });
        });
    // The handler is in place before the work starts.
    if spawned.is_ok() {
        let _ = registered.recv_timeout(Duration::from_secs(1));
    }
    flag
}

/// Waits for `child` (ffmpeg). Once `interrupted` is set, or `abort()`
/// says the work it feeds failed, asks it to stop as Ctrl-C does (SIGINT:
/// ffmpeg finishes and closes its outputs), and kills it if it has not
/// exited [`STOP_GRACE`] later.
pub fn wait_child(
    child: &mut Child,
    interrupted: &AtomicBool,
    mut abort: impl FnMut() -> bool,
) -> Result<ExitStatus> {
    let mut asked: Option<Instant> = None;
    loop {
        if let Some(status) = try_reap(child).context("waiting for ffmpeg")? {
            return Ok(status);
        }
        match asked {
            None if interrupted.load(Ordering::Relaxed) || abort() => {
                let pid = rustix::process::Pid::from_child(child);
                // Gone already: `try_wait` reports it next.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
                asked = Some(Instant::now());
            }
            Some(at) if at.elapsed() > STOP_GRACE => {
                return kill_and_reap(child).context("waiting for ffmpeg");
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What an exit at once (a second signal, or [`GIVE_UP`]) must not leave
/// behind, with the number of the [`OnQuit`] that registered it.
static LEFT_ON_QUIT: Mutex<Vec<(u64, Leftover)>> = Mutex::new(Vec::new());
static NEXT_ON_QUIT: AtomicU64 = AtomicU64::new(0);

enum Leftover {
    /// A child process, killed: a terminal's second Ctrl-C reaches it too,
    /// but a signal sent to the CLI alone (`kill -INT`) does not.
    Child(u32),
    /// A scratch directory, removed.
    Dir(PathBuf),
}

/// A registration with the exit at once; dropping it unregisters.
#[must_use = "dropping it unregisters at once"]
pub struct OnQuit(u64);

impl Drop for OnQuit {
    fn drop(&mut self) {
        left_on_quit().retain(|(n, _)| *n != self.0);
    }
}

/// The registry; a panic elsewhere while it was held leaves it usable.
fn left_on_quit() -> MutexGuard<'static, Vec<(u64, Leftover)>> {
    LEFT_ON_QUIT.lock().unwrap_or_else(PoisonError::into_inner)
}

fn register(leftover: Leftover) -> OnQuit {
    let n = NEXT_ON_QUIT.fetch_add(1, Ordering::Relaxed);
    left_on_quit().push((n, leftover));
    OnQuit(n)
}

/// Kills `child` if the process exits at once while it runs. Reap it with
/// [`try_reap`] or [`kill_and_reap`] (or [`wait_child`]), which forget it
/// in the same step: once reaped, its pid may be another process's.
pub fn kill_on_quit(child: &Child) -> OnQuit {
    register(Leftover::Child(child.id()))
}

/// `child.try_wait()`, reaping it and forgetting it for the exit at once
/// under the registry's lock, which that exit holds while it kills.
pub fn try_reap(child: &mut Child) -> std::io::Result<Option<ExitStatus>> {
    let mut left = left_on_quit();
    let status = child.try_wait()?;
    if status.is_some() {
        forget_child(&mut left, child.id());
    }
    Ok(status)
}

/// Kills `child` and waits for it, forgetting it as [`try_reap`] does.
pub fn kill_and_reap(child: &mut Child) -> std::io::Result<ExitStatus> {
    let mut left = left_on_quit();
    let _ = child.kill();
    let status = child.wait();
    forget_child(&mut left, child.id());
    status
}

fn forget_child(left: &mut Vec<(u64, Leftover)>, pid: u32) {
    left.retain(|(_, l)| !matches!(l, Leftover::Child(p) if *p == pid));
}

/// Removes `dir` if the process exits at once while the registration is
/// held.
pub fn remove_on_quit(dir: &Path) -> OnQuit {
    register(Leftover::Dir(dir.to_path_buf()))
}

/// Kills the registered children, then removes the registered directories
/// (a child may still be writing into one until it is gone).
fn clean_up_for_quit() {
    let left = left_on_quit();
    for (_, leftover) in left.iter() {
        if let Leftover::Child(pid) = leftover {
            if let Some(pid) = i32::try_from(*pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    for (_, leftover) in left.iter() {
        if let Leftover::Dir(dir) = leftover {
            // A killed child's last writes may land a moment later.
            for _ in 0..20 {
                if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registrations are undone by dropping them, and an exit at once kills
    /// the children and removes the directories still registered.
    #[test]
    fn an_exit_at_once_kills_registered_children_and_removes_their_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = dir.path().join("kept");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&kept).expect("mkdir");
        std::fs::create_dir_all(&scratch).expect("mkdir");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let _child = kill_on_quit(&child);
        let _scratch = remove_on_quit(&scratch);
        drop(remove_on_quit(&kept));
        // A child reaped is forgotten at once: its pid is not killed.
        let mut done = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        let _done = kill_on_quit(&done);
        while try_reap(&mut done).expect("try_wait").is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let done_pid = done.id();
        assert!(!left_on_quit()
            .iter()
            .any(|(_, l)| matches!(l, Leftover::Child(p) if *p == done_pid)));
        clean_up_for_quit();
        let status = child.wait().expect("wait");
        assert!(!status.success(), "killed, not finished: {status}");
        assert!(!scratch.exists());
        assert!(kept.exists(), "an unregistered directory stays");
    }
}
