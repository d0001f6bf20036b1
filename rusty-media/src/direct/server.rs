//! The provider's side of the direct data channel: the listener, the
//! tickets, and one task per admitted connection.
//!
//! The server task owns the listener and the ticket table; a
//! [`DirectServer`] handle issues tickets (for the media protocol's
//! [`crate::wire::MediaRequest::DirectTicket`]) and redeems them (for a new
//! connection). A connection is answered by two halves: one reads
//! requests and starts each answer (the store read, on a blocking thread,
//! and the upload accounting of [`MediaHandle::answer_request`]) at most
//! [`READ_AHEAD`] ahead, the other writes the answers in order. A slow
//! reader therefore holds at most that many replies here.

use std::{
    collections::HashMap,
    net::TcpListener as StdTcpListener,
    sync::atomic::Ordering,
    sync::Arc,
    time::{Duration, Instant},
};

use rusty_network::PeerId;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, Interest},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpStream,
    },
    sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore},
    task::JoinHandle,
};
use tracing::debug;

use super::{encode_lengths, ChunkRange, ReplyHead, HELLO_LEN, MAGIC, REQUEST_LEN, TICKET_LEN};
use crate::service::{Counters, DirectAnswer, MediaHandle};

/// How long a ticket admits a connection after its issue.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Tickets outstanding at once, at most; beyond it the ticket request is
/// answered `Busy`.
pub const MAX_TICKETS: usize = 1_024;
/// Connections served at once, at most; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Replies prepared ahead of the one being written, per connection.
pub const READ_AHEAD: usize = 4;
/// A connection must greet within this.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Commands queued for the server task, at most.
const COMMAND_QUEUE: usize = 256;

type Ticket = [u8; TICKET_LEN];
/// A reply, and its hold on the budget of replies not yet sent.
type Answer = (DirectAnswer, Option<OwnedSemaphorePermit>);

enum Command {
    Issue {
        peer: PeerId,
        reply: oneshot::Sender<Option<Ticket>>,
    },
    Redeem {
        ticket: Ticket,
        reply: oneshot::Sender<Option<PeerId>>,
    },
}

/// The data channel's server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DirectServer {
    port: u16,
    commands: mpsc::Sender<Command>,
}

/// The server task, before it runs: its listener and command queue.
pub(crate) struct ServerTask {
    listener: StdTcpListener,
    commands: mpsc::Receiver<Command>,
}

impl DirectServer {
    /// A server over a bound listener: the handle, and the task for
    /// [`ServerTask::run`].
    pub(crate) fn new(listener: StdTcpListener) -> std::io::Result<(DirectServer, ServerTask)> {
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        Ok((
            DirectServer { port, commands: tx },
            ServerTask {
                listener,
                commands: rx,
            },
        ))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A ticket for `peer`: `None` when too many are outstanding (or the
    /// server stopped).
    pub(crate) async fn issue(&self, peer: PeerId) -> Option<Ticket> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Issue { peer, reply })
            .await
            .ok()?;
        answer.await.ok().flatten()
    }

    /// The peer a ticket was issued to, once: the ticket is spent.
    async fn redeem(&self, ticket: Ticket) -> Option<PeerId> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Redeem { ticket, reply })
            .await
            .ok()?;
        answer.await.ok().flatten()
    }
}

impl ServerTask {
    /// Accepts connections and keeps the tickets until the media service
    /// stops.
    pub(crate) async fn run(self, svc: MediaHandle, server: DirectServer) {
        let ServerTask {
            listener,
            mut commands,
        } = self;
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(target: "media", error = %e, "data channel listener unusable");
                return;
            }
        };
        let mut shutdown = svc.shared.shutdown.subscribe();
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut tickets: HashMap<Ticket, (PeerId, Instant)> = HashMap::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(cmd) = commands.recv() => match cmd {
                    Command::Issue { peer, reply } => {
                        let now = Instant::now();
                        if tickets.len() >= MAX_TICKETS {
                            tickets.retain(|_, (_, at)| now.duration_since(*at) < TICKET_TTL);
                        }
                        let ticket = (tickets.len() < MAX_TICKETS).then(|| {
                            let t: Ticket = rand::random();
                            tickets.insert(t, (peer, now));
                            t
                        });
                        let _ = reply.send(ticket);
                    }
                    Command::Redeem { ticket, reply } => {
                        let peer = tickets
                            .remove(&ticket)
                            .filter(|(_, at)| at.elapsed() < TICKET_TTL)
                            .map(|(peer, _)| peer);
                        let _ = reply.send(peer);
                    }
                },
                accepted = listener.accept() => match accepted {
                    Ok((sock, from)) => match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let (svc, server) = (svc.clone(), server.clone());
                            crate::service::io_pool::spawn_on_net(sock, move |sock| async move {
                                let _slot = slot;
                                if let Err(reason) = serve(svc, server, sock).await {
                                    debug!(target: "media", %from, reason, "data channel closed");
                                }
                            });
                        }
                        Err(_) => debug!(target: "media", %from, "data channel full: connection refused"),
                    },
                    Err(e) => {
                        // Out of file descriptors, most likely: do not spin.
                        debug!(target: "media", error = %e, "data channel accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }
}

/// Serves one connection: the greeting, then requests until the viewer
/// closes it, goes idle, breaks the protocol, or the service stops.
async fn serve(svc: MediaHandle, server: DirectServer, mut sock: TcpStream) -> Result<(), String> {
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut hello = [0u8; HELLO_LEN];
    tokio::time::timeout(HELLO_TIMEOUT, sock.read_exact(&mut hello))
        .await
        .map_err(|_| "no greeting in time".to_string())?
        .map_err(|e| format!("greeting: {e}"))?;
    let (magic, ticket) = hello.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err("not a data channel greeting".into());
    }
    let mut t: Ticket = [0; TICKET_LEN];
    t.copy_from_slice(ticket);
    let peer = server
        .redeem(t)
        .await
        .ok_or_else(|| "unknown, spent or expired ticket".to_string())?;
    debug!(target: "media", %peer, "data channel admitted");
    let (rd, wr) = sock.into_split();
    let (answers, queued) = mpsc::channel(READ_AHEAD);
    let mut shutdown = svc.shared.shutdown.subscribe();
    tokio::select! {
        r = read_requests(svc.clone(), rd, answers) => r,
        r = write_answers(&svc.shared.counters, wr, queued) => r,
        _ = shutdown.changed() => Ok(()),
    }
}

/// Reads request frames and starts each answer, in order.
async fn read_requests(
    svc: MediaHandle,
    mut rd: OwnedReadHalf,
    answers: mpsc::Sender<JoinHandle<Answer>>,
) -> Result<(), String> {
    let mut frame = [0u8; REQUEST_LEN];
    loop {
        match tokio::time::timeout(IDLE_TIMEOUT, rd.read_exact(&mut frame)).await {
            Err(_) => return Err("idle".into()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Ok(Ok(_)) => {}
        }
        let range = ChunkRange::decode(&frame).map_err(|e| format!("bad request: {e}"))?;
        let svc = svc.clone();
        let answer = tokio::spawn(async move {
            let resp = svc.answer_direct(range.id, range.start, range.count).await;
            // Held until the reply is written, as on libp2p: it bounds the
            // replies in progress, though these hold file pages, not copies.
            let len = match &resp {
                DirectAnswer::Run { run, .. } => usize::try_from(run.len).unwrap_or(usize::MAX),
                _ => 0,
            };
            match svc.hold_reply_budget(len) {
                Some(held) => (resp, Some(held)),
                None => (DirectAnswer::Busy, None),
            }
        });
        if answers.send(answer).await.is_err() {
            return Ok(());
        }
    }
}

/// Bytes handed to one `sendfile` call, at most: the size the socket
/// writes had before, so that no single system call of this low-priority
/// thread holds a core long (the kernel here does not preempt inside one).
const SENDFILE_STEP: u64 = 64 * 1024;

/// Sends `len` bytes of `file` from `offset` on the socket with
/// `sendfile`: the kernel hands the file's cached pages to the socket, so
/// the bytes are neither read into this process nor copied out of it
/// again. A file that ends early (cut short since the run was located) is
/// an error: the reply's lengths are already sent, so the channel closes.
#[cfg(target_os = "linux")]
pub(super) async fn send_file_range(
    sock: &TcpStream,
    file: &std::fs::File,
    mut offset: u64,
    len: u64,
) -> std::io::Result<()> {
    let end = offset.saturating_add(len);
    while offset < end {
        let step = usize::try_from((end - offset).min(SENDFILE_STEP)).unwrap_or(usize::MAX);
        sock.writable().await?;
        let sent = sock.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(sock, file, Some(&mut offset), step).map_err(std::io::Error::from)
        });
        match sent {
            Ok(0) => return Err(file_ended()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// [`send_file_range`] where there is no `sendfile`: the bytes are read
/// into memory a step at a time and written.
#[cfg(not(target_os = "linux"))]
pub(super) async fn send_file_range(
    sock: &TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    let mut left = len;
    let mut buf = vec![0u8; SENDFILE_STEP as usize];
    while left > 0 {
        let want = usize::try_from(left.min(SENDFILE_STEP)).unwrap_or(usize::MAX);
        let got = file.read(&mut buf[..want])?;
        if got == 0 {
            return Err(file_ended());
        }
        let mut written = 0;
        while written < got {
            sock.writable().await?;
            match sock.try_write(&buf[written..got]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        left -= got as u64;
    }
    Ok(())
}

fn file_ended() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the content file ended inside the run",
    )
}

/// Writes the answers in the order their requests came.
async fn write_answers(
    counters: &Counters,
    mut wr: OwnedWriteHalf,
    mut queued: mpsc::Receiver<JoinHandle<Answer>>,
) -> Result<(), String> {
    while let Some(answer) = queued.recv().await {
        let (resp, _held) = answer.await.map_err(|e| format!("answer: {e}"))?;
        let io = |e: std::io::Error| format!("write: {e}");
        match resp {
            DirectAnswer::Run { start, run } => {
                // At most MAX_CHUNKS_PER_REQUEST (the store locates no
                // more than was asked).
                let count = u8::try_from(run.lengths.len()).map_err(|_| "too many chunks")?;
                let mut head = ReplyHead::Chunks { start, count }.encode().to_vec();
                head.extend_from_slice(&encode_lengths(&run.lengths));
                wr.write_all(&head).await.map_err(io)?;
                send_file_range(wr.as_ref(), &run.file, run.offset, run.len)
                    .await
                    .map_err(io)?;
                counters
                    .direct_uploaded_bytes
                    .fetch_add(run.len, Ordering::Relaxed);
            }
            DirectAnswer::Busy => wr.write_all(&ReplyHead::Busy.encode()).await.map_err(io)?,
            DirectAnswer::NotFound => wr
                .write_all(&ReplyHead::NotFound.encode())
                .await
                .map_err(io)?,
        }
    }
    Ok(())
}
