//! Ending long CLI work cleanly on Ctrl-C (SIGINT) or SIGTERM: the first
//! signal sets a flag the work checks (a broadcast ends on the node so its
//! viewers' playlists end, ffmpeg is asked to stop, scratch files go); a
//! second one exits at once.

use std::{
    process::{Child, ExitStatus},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
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
        if let Some(status) = child.try_wait().context("waiting for ffmpeg")? {
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
                let _ = child.kill();
                return child.wait().context("waiting for ffmpeg");
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
