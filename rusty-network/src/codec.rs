//! The request-response codec of the sync protocols: one frame per message,
//! a 4-byte big-endian length and the canonical encoding of a
//! [`Request`]/[`Response`]. Lengths above the protocol's cap are refused
//! before reading the body; bodies that do not decode fail with
//! `InvalidData`, which the network layer treats as a malformed message.
//! The writer refuses (`InvalidInput`) a frame over the cap the other side
//! reads with, rather than have the peer take it for a malformed message.
//!
//! A frame's length comes from an untrusted peer, so the reader never
//! allocates it up front: the buffer grows with the bytes that actually
//! arrive (a peer claiming 40 MiB and sending 10 bytes costs 10 bytes).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use crate::message::{Protocol, Request, Response};

/// A negotiated sync protocol: its kind and its chain-specific id.
#[derive(Debug, Clone)]
pub struct SyncProtocol {
    pub kind: Protocol,
    id: StreamProtocol,
}

impl SyncProtocol {
    /// `/rusty/<chain>/<name>/1`.
    pub fn new(chain: &str, kind: Protocol) -> SyncProtocol {
        let id = StreamProtocol::try_from_owned(format!("/rusty/{chain}/{}/1", kind.name()))
            .expect("protocol ids built from a chain name start with '/'");
        SyncProtocol { kind, id }
    }
}

impl AsRef<str> for SyncProtocol {
    fn as_ref(&self) -> &str {
        self.id.as_ref()
    }
}

/// The codec; `max_block_size` bounds `blocks` replies.
#[derive(Debug, Clone)]
pub struct SyncCodec {
    pub max_block_size: usize,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {max}"),
        ));
    }
    let mut body = Vec::with_capacity(len.min(INITIAL_FRAME_CAPACITY));
    let read = (&mut *io).take(len as u64).read_to_end(&mut body).await?;
    if read != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ended after {read} of {len} bytes"),
        ));
    }
    Ok(body)
}

/// What a frame buffer starts with; it grows as bytes arrive.
const INITIAL_FRAME_CAPACITY: usize = 64 * 1024;

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    body: &[u8],
    max: usize,
) -> io::Result<()> {
    if body.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds the limit of {max}", body.len()),
        ));
    }
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(body).await?;
    io.close().await
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = SyncProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, p: &SyncProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, p.kind.max_request()).await?;
        Request::decode_body(p.kind, &body).map_err(invalid)
    }

    async fn read_response<T>(&mut self, p: &SyncProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, p.kind.max_response(self.max_block_size)).await?;
        Response::decode_frame(p.kind, body).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        p: &SyncProtocol,
        io: &mut T,
        req: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if req.protocol() != p.kind {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "request on the wrong protocol",
            ));
        }
        write_frame(io, &req.into_body(), p.kind.max_request()).await
    }

    async fn write_response<T>(
        &mut self,
        p: &SyncProtocol,
        io: &mut T,
        resp: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if resp.protocol() != p.kind {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "response on the wrong protocol",
            ));
        }
        write_frame(
            io,
            &resp.into_body(),
            p.kind.max_response(self.max_block_size),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;
    use rusty_shared_types::Hash256;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        futures::executor::block_on(async {
            let p = SyncProtocol::new("dev", Protocol::Blocks);
            assert_eq!(p.as_ref(), "/rusty/dev/blocks/1");
            let mut codec = SyncCodec {
                max_block_size: 1000,
            };
            let req = Request::Blocks {
                hashes: vec![Hash256::ZERO; 2],
            };
            let mut buf = Cursor::new(Vec::new());
            codec
                .write_request(&p, &mut buf, req.clone())
                .await
                .unwrap();
            let mut r = Cursor::new(buf.into_inner());
            assert_eq!(codec.read_request(&p, &mut r).await.unwrap(), req);

            let mut huge = (u32::MAX).to_be_bytes().to_vec();
            huge.extend_from_slice(&[0; 16]);
            let err = codec
                .read_request(&p, &mut Cursor::new(huge))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);

            let mut garbage = 3u32.to_be_bytes().to_vec();
            garbage.extend_from_slice(&[0xff; 3]);
            let err = codec
                .read_request(&p, &mut Cursor::new(garbage))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);

            // A frame shorter than its length claims: an early end, not a
            // malformed message.
            let mut short = 64u32.to_be_bytes().to_vec();
            short.extend_from_slice(&[0; 10]);
            let err = codec
                .read_request(&p, &mut Cursor::new(short))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        });
    }

    #[test]
    fn a_frame_shorter_than_it_claims_fails_and_long_frames_read_whole() {
        futures::executor::block_on(async {
            // Claims the whole media response cap, sends 10 bytes.
            let max = crate::message::MAX_MEDIA_RESPONSE;
            let mut frame = u32::try_from(max).expect("fits").to_be_bytes().to_vec();
            frame.extend_from_slice(&[7; 10]);
            let err = read_frame(&mut Cursor::new(frame), max).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

            // A frame that arrives whole reads back exactly.
            let body = vec![9u8; INITIAL_FRAME_CAPACITY * 3 + 5];
            let mut out = Cursor::new(Vec::new());
            write_frame(&mut out, &body, max).await.unwrap();
            let got = read_frame(&mut Cursor::new(out.into_inner()), max)
                .await
                .unwrap();
            assert_eq!(got, body);
        });
    }
}
