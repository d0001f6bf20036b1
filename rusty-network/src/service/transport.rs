//! The TCP transport, with the kernel's send queue kept short so that
//! small urgent frames (a block's gossip, a ChainLock) do not wait behind
//! megabytes of media replies.
//!
//! Why: Yamux interleaves its streams frame by frame (16 KiB), but only
//! for frames it still holds. Everything already handed to the kernel is
//! sent in order, and Linux lets a socket's send queue grow to several MiB
//! on a fast link, so a block gossiped while a provider uploads could wait
//! behind the whole in-flight media window. `TCP_NOTSENT_LOWAT` makes the
//! socket report itself writable only while fewer than [`NOTSENT_LOWAT`]
//! bytes are queued and not yet sent, so that backlog stays in Yamux,
//! which serves its streams in turn. Bytes in flight on the wire (the
//! congestion window) are not limited, so throughput on a long link is not.
//!
//! Measured (`bench media`, A/B in one session, docs/performance.md): a
//! block beside a transfer p50 7.0–7.3 ms with it against 7.8–8.4 ms
//! without (idle 2.3 ms), throughput unchanged. The rest of the delay is
//! the receiver's queue: up to the four 1 MiB replies in flight, read in
//! order by a CPU-bound receiver.

use libp2p::{
    core::{muxing::StreamMuxerBox, transport::Boxed, upgrade::Version},
    identity::Keypair,
    noise, tcp, yamux, PeerId, Transport,
};
use tracing::debug;

/// Unsent bytes the kernel may hold per connection: a few Yamux frames.
pub const NOTSENT_LOWAT: u32 = 128 * 1024;

/// TCP with Noise and Yamux, as `SwarmBuilder::with_tcp` builds it, plus
/// [`NOTSENT_LOWAT`] on every connection's socket.
pub fn tcp_transport(
    key: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let noise = noise::Config::new(key)?;
    Ok(
        tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
            .map(|stream: tcp::tokio::TcpStream, _| {
                let sock = socket2::SockRef::from(&stream.0);
                if let Err(e) = sock.set_tcp_notsent_lowat(NOTSENT_LOWAT) {
                    // Only a latency optimisation: the connection works without it.
                    debug!(error = %e, "TCP_NOTSENT_LOWAT not set");
                }
                stream
            })
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
    )
}
