//! The viewer's side of the direct data channel: one connection to one
//! provider, owned by a task on the data channel's low-priority runtime
//! (`io_pool::net_runtime`); a [`DirectChannel`] handle queues requests on
//! it. The download that opened it holds the only handle, so the
//! connection closes when the download drops it.
//!
//! The task writes requests as they come and reads the replies in the same
//! order; a reply is read straight into the buffers its chunks stay in
//! (no zero-fill, no re-framing). Any error ends the task: every request
//! queued on it then fails, and the download falls back to libp2p.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use rusty_network::{multiaddr::Protocol, PeerId};
use rusty_shared_types::Hash256;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpStream,
    },
    sync::{mpsc, oneshot},
};

use super::{decode_lengths, ChunkRange, ReplyHead, HELLO_LEN, MAGIC, REPLY_HEAD_LEN};
use crate::{
    service::{MediaHandle, REQUEST_TIMEOUT},
    wire::{MediaRequest, MediaResponse},
};

/// How long connecting may take before the download stays on libp2p.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests queued on a channel, at most (a download keeps a few in
/// flight per provider).
const QUEUE: usize = 32;

type Reply = oneshot::Sender<Result<MediaResponse, String>>;

struct Fetch {
    range: ChunkRange,
    reply: Reply,
}

/// A data channel to one provider. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct DirectChannel {
    fetches: mpsc::Sender<Fetch>,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetch").field("range", &self.range).finish()
    }
}

impl DirectChannel {
    /// Asks `peer` for a ticket over the media protocol and connects to its
    /// data channel at the address of its libp2p connection. The error
    /// says why not (no direct connection, no data channel there, refused,
    /// too slow).
    pub async fn open(svc: &MediaHandle, peer: PeerId) -> Result<DirectChannel, String> {
        let ip = direct_ip(svc, peer).await?;
        let (port, ticket) = match svc.request(peer, &MediaRequest::DirectTicket).await? {
            MediaResponse::Direct { port, ticket } => (port, ticket),
            MediaResponse::NotFound => return Err("the peer serves no data channel".into()),
            MediaResponse::Busy => return Err("the peer's data channel is busy".into()),
            other => return Err(format!("unexpected answer to a ticket request: {other:?}")),
        };
        let addr = SocketAddr::new(ip, port);
        let mut sock = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        sock.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut hello = [0u8; HELLO_LEN];
        hello[..MAGIC.len()].copy_from_slice(&MAGIC);
        hello[MAGIC.len()..].copy_from_slice(&ticket);
        sock.write_all(&hello)
            .await
            .map_err(|e| format!("greeting {addr}: {e}"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        crate::service::io_pool::spawn_on_net(sock, move |sock| run(sock, rx));
        Ok(DirectChannel { fetches: tx })
    }

    /// Chunks `[start, start + count)` of `id`: a
    /// [`MediaResponse::Chunks`] (a prefix of them, each of a valid
    /// length but not yet verified), `NotFound` or `Busy`; an error once
    /// the channel is closed.
    pub async fn fetch(
        &self,
        id: Hash256,
        start: u64,
        count: u32,
    ) -> Result<MediaResponse, String> {
        let (reply, answer) = oneshot::channel();
        let range = ChunkRange { id, start, count };
        self.fetches
            .send(Fetch { range, reply })
            .await
            .map_err(|_| "data channel closed".to_string())?;
        answer
            .await
            .map_err(|_| "data channel closed".to_string())?
    }
}

/// The IP address of a direct (not relayed) libp2p connection to `peer`.
async fn direct_ip(svc: &MediaHandle, peer: PeerId) -> Result<IpAddr, String> {
    let peers = svc
        .shared
        .net
        .peers()
        .await
        .map_err(|e| format!("network: {e}"))?;
    peers
        .iter()
        .filter(|p| p.peer_id == peer && !p.relayed)
        .find_map(|p| {
            p.addr.iter().find_map(|proto| match proto {
                Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
                Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
                _ => None,
            })
        })
        .ok_or_else(|| "no direct connection to the peer".to_string())
}

/// The connection's task: requests out, replies in, in order.
async fn run(sock: TcpStream, fetches: mpsc::Receiver<Fetch>) {
    let (rd, wr) = sock.into_split();
    let (sent, waiting) = mpsc::channel(QUEUE);
    tokio::select! {
        () = write_requests(wr, fetches, sent) => {}
        () = read_replies(rd, waiting) => {}
    }
}

async fn write_requests(
    mut wr: OwnedWriteHalf,
    mut fetches: mpsc::Receiver<Fetch>,
    sent: mpsc::Sender<Fetch>,
) {
    while let Some(f) = fetches.recv().await {
        if let Err(e) = wr.write_all(&f.range.encode()).await {
            let _ = f.reply.send(Err(format!("data channel write: {e}")));
            return;
        }
        if sent.send(f).await.is_err() {
            return;
        }
    }
}

async fn read_replies(mut rd: OwnedReadHalf, mut waiting: mpsc::Receiver<Fetch>) {
    while let Some(f) = waiting.recv().await {
        match tokio::time::timeout(REQUEST_TIMEOUT, read_reply(&mut rd, &f.range)).await {
            Ok(Ok(resp)) => {
                let _ = f.reply.send(Ok(resp));
            }
            Ok(Err(e)) => {
                let _ = f.reply.send(Err(e));
                break;
            }
            Err(_) => {
                let _ = f.reply.send(Err("data channel reply timed out".into()));
                break;
            }
        }
    }
    // The stream is out of step: fail what was sent after it.
    waiting.close();
    while let Some(f) = waiting.recv().await {
        let _ = f.reply.send(Err("data channel closed".into()));
    }
}

/// Reads one reply to `range`.
pub(super) async fn read_reply(
    rd: &mut OwnedReadHalf,
    range: &ChunkRange,
) -> Result<MediaResponse, String> {
    let mut head = [0u8; REPLY_HEAD_LEN];
    rd.read_exact(&mut head)
        .await
        .map_err(|e| format!("data channel read: {e}"))?;
    let (start, count) = match ReplyHead::decode(&head).map_err(|e| format!("bad reply: {e}"))? {
        ReplyHead::NotFound => return Ok(MediaResponse::NotFound),
        ReplyHead::Busy => return Ok(MediaResponse::Busy),
        ReplyHead::Chunks { start, count } => (start, count),
    };
    if start != range.start || u32::from(count) > range.count {
        return Err(format!(
            "reply of {count} chunks from {start} to a request of {} from {}",
            range.count, range.start
        ));
    }
    let mut lens = vec![0u8; 4 * usize::from(count)];
    rd.read_exact(&mut lens)
        .await
        .map_err(|e| format!("data channel read: {e}"))?;
    let lens = decode_lengths(start, &lens).map_err(|e| format!("bad reply: {e}"))?;
    let mut chunks = Vec::with_capacity(lens.len());
    for len in lens {
        let len = len as usize;
        let mut chunk = Vec::with_capacity(len);
        (&mut *rd)
            .take(len as u64)
            .read_to_end(&mut chunk)
            .await
            .map_err(|e| format!("data channel read: {e}"))?;
        if chunk.len() != len {
            return Err("data channel closed mid-reply".into());
        }
        chunks.push(chunk);
    }
    Ok(MediaResponse::Chunks { start, chunks })
}
