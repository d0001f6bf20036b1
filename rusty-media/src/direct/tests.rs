use proptest::prelude::*;
use rusty_shared_types::Hash256;
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
};

use super::*;
use crate::{manifest::MAX_CHUNKS, wire::MediaResponse};

const CS: u32 = CHUNK_SIZE;

fn arb_range() -> impl Strategy<Value = ChunkRange> {
    (any::<[u8; 32]>(), 0..MAX_CHUNKS, 1..=MAX_CHUNKS_PER_REQUEST).prop_map(|(id, start, count)| {
        ChunkRange {
            id: Hash256(id),
            start: start.min(MAX_CHUNKS - u64::from(count)),
            count,
        }
    })
}

fn arb_head() -> impl Strategy<Value = ReplyHead> {
    prop_oneof![
        (0..MAX_CHUNKS, 1..=MAX_CHUNKS_PER_REQUEST as u8).prop_map(|(start, count)| {
            ReplyHead::Chunks {
                start: start.min(MAX_CHUNKS - u64::from(count)),
                count,
            }
        }),
        Just(ReplyHead::NotFound),
        Just(ReplyHead::Busy),
    ]
}

proptest! {
    #[test]
    fn frames_round_trip(range in arb_range(), head in arb_head()) {
        prop_assert_eq!(ChunkRange::decode(&range.encode()).ok(), Some(range));
        prop_assert_eq!(ReplyHead::decode(&head.encode()).ok(), Some(head));
    }

    /// Untrusted bytes: decoding never panics, and whatever decodes
    /// re-encodes to the same bytes (one encoding per message).
    #[test]
    fn random_frames_are_canonical_or_rejected(
        req in any::<[u8; REQUEST_LEN]>(),
        head in any::<[u8; REPLY_HEAD_LEN]>(),
        lens in proptest::collection::vec(any::<u8>(), 0..80),
        start in any::<u64>(),
    ) {
        if let Ok(r) = ChunkRange::decode(&req) {
            prop_assert_eq!(r.encode(), req);
            prop_assert!(r.count >= 1 && r.count <= MAX_CHUNKS_PER_REQUEST);
        }
        if let Ok(h) = ReplyHead::decode(&head) {
            prop_assert_eq!(h.encode(), head);
        }
        if let Ok(l) = decode_lengths(start, &lens) {
            prop_assert_eq!(encode_lengths(&l.iter().map(|&n| u64::from(n)).collect::<Vec<_>>()), lens);
        }
    }

    /// The lengths follow a chunks response's rules: full chunks, then one
    /// of 1 to CHUNK_SIZE bytes.
    #[test]
    fn lengths_follow_the_chunk_rules(n in 1..=MAX_CHUNKS_PER_REQUEST as usize, last in 1..=CS, start in 0..MAX_CHUNKS - 16) {
        let mut lens = vec![CS; n - 1];
        lens.push(last);
        let bytes: Vec<u8> = lens.iter().flat_map(|l| l.to_le_bytes()).collect();
        prop_assert_eq!(decode_lengths(start, &bytes).ok(), Some(lens.clone()));
        if n > 1 && last < CS {
            // A short chunk anywhere but last is refused.
            let mut swapped = lens.clone();
            swapped.swap(0, n - 1);
            let bytes: Vec<u8> = swapped.iter().flat_map(|l| l.to_le_bytes()).collect();
            let refused = matches!(
                decode_lengths(start, &bytes),
                Err(WireError::ShortChunk { index, .. }) if index == start
            );
            prop_assert!(refused, "a short first chunk");
        }
    }
}

#[test]
fn bad_frames_are_refused_with_a_reason() {
    let ok = ChunkRange {
        id: Hash256([1; 32]),
        start: 5,
        count: 16,
    };
    let mut zero = ok.encode();
    zero[40..].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        ChunkRange::decode(&zero),
        Err(WireError::CountOutOfRange { count: 0, .. })
    ));
    let mut many = ok.encode();
    many[40..].copy_from_slice(&17u32.to_le_bytes());
    assert!(ChunkRange::decode(&many).is_err());
    let mut far = ok.encode();
    far[32..40].copy_from_slice(&(MAX_CHUNKS - 1).to_le_bytes());
    assert!(matches!(
        ChunkRange::decode(&far),
        Err(WireError::ChunkRangeOutOfBounds { .. })
    ));

    let mut status = ReplyHead::Busy.encode();
    status[0] = 3;
    assert!(matches!(
        ReplyHead::decode(&status),
        Err(WireError::UnknownTag { tag: 3, .. })
    ));
    let mut busy_with_fields = ReplyHead::Busy.encode();
    busy_with_fields[9] = 1;
    assert!(ReplyHead::decode(&busy_with_fields).is_err());
    let empty = ReplyHead::Chunks { start: 0, count: 0 }.encode();
    assert!(ReplyHead::decode(&empty).is_err());

    assert!(matches!(
        decode_lengths(0, &[1, 0, 0]),
        Err(WireError::TrailingBytes(3))
    ));
    assert!(decode_lengths(0, &[]).is_err());
    assert!(matches!(
        decode_lengths(0, &0u32.to_le_bytes()),
        Err(WireError::Empty("chunk"))
    ));
    assert!(matches!(
        decode_lengths(0, &(CS + 1).to_le_bytes()),
        Err(WireError::TooLong { .. })
    ));
}

/// A connected pair of loopback sockets.
async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (client.expect("connect"), accepted.expect("accept").0)
}

/// What the viewer makes of `reply` to a request of 4 chunks from 10.
async fn viewer_reads(reply: Vec<u8>) -> Result<MediaResponse, String> {
    let (viewer, mut provider) = socket_pair().await;
    provider.write_all(&reply).await.expect("write");
    drop(provider);
    let (mut rd, _wr) = viewer.into_split();
    let range = ChunkRange {
        id: Hash256([2; 32]),
        start: 10,
        count: 4,
    };
    client::read_reply(&mut rd, &range).await
}

fn chunks_reply(start: u64, lens: &[u32], body: usize) -> Vec<u8> {
    let count = u8::try_from(lens.len()).expect("few");
    let mut out = ReplyHead::Chunks { start, count }.encode().to_vec();
    for l in lens {
        out.extend_from_slice(&l.to_le_bytes());
    }
    out.extend(std::iter::repeat_n(7u8, body));
    out
}

#[tokio::test]
async fn the_viewer_reads_replies_straight_and_refuses_what_does_not_fit() {
    // Two chunks, the second short: read whole.
    let cs = CS as usize;
    let got = viewer_reads(chunks_reply(10, &[CS, 100], cs + 100)).await;
    match got {
        Ok(MediaResponse::Chunks { start: 10, chunks }) => {
            assert_eq!(chunks.len(), 2);
            assert_eq!((chunks[0].len(), chunks[1].len()), (cs, 100));
        }
        other => panic!("expected two chunks, got {other:?}"),
    }
    assert!(matches!(
        viewer_reads(ReplyHead::Busy.encode().to_vec()).await,
        Ok(MediaResponse::Busy)
    ));
    assert!(matches!(
        viewer_reads(ReplyHead::NotFound.encode().to_vec()).await,
        Ok(MediaResponse::NotFound)
    ));
    // Another start than asked, more chunks than asked, a short chunk
    // first, bytes cut off, garbage: each an error, never a panic.
    for (reply, why) in [
        (chunks_reply(11, &[100], 100), "another start"),
        (chunks_reply(10, &[CS; 5], 5 * cs), "more than asked"),
        (chunks_reply(10, &[100, 100], 200), "a short chunk first"),
        (chunks_reply(10, &[CS], cs - 1), "cut off"),
        (vec![9; 40], "garbage"),
        (Vec::new(), "nothing"),
    ] {
        assert!(viewer_reads(reply).await.is_err(), "{why}");
    }
}

#[tokio::test]
async fn a_file_range_arrives_whole_and_a_short_file_is_an_error() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::TempDir::new().expect("dir");
    let path = dir.path().join("content");
    // More than several sendfile steps, not a multiple of one.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).expect("write");
    let file = std::fs::File::open(&path).expect("open");

    let (sender, mut receiver) = socket_pair().await;
    let (offset, len) = (1_234u64, 250_000u64);
    let (sent, got) = tokio::join!(
        server::send_file_range(&sender, &file, offset, len),
        async {
            let mut buf = vec![0u8; len as usize];
            receiver.read_exact(&mut buf).await.map(|_| buf)
        }
    );
    sent.expect("sent");
    assert_eq!(got.expect("received"), data[1_234..251_234]);

    // A range past the file's end: what the file holds goes out, then an
    // error (the reply's lengths promised more), never a hang.
    let (sender, mut receiver) = socket_pair().await;
    let short = server::send_file_range(&sender, &file, 290_000, 20_000).await;
    assert_eq!(
        short.expect_err("past the end").kind(),
        std::io::ErrorKind::UnexpectedEof
    );
    drop(sender);
    let mut rest = Vec::new();
    receiver.read_to_end(&mut rest).await.expect("read");
    assert_eq!(rest, data[290_000..]);
}
