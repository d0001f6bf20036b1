//! Media methods (`stream_*`): publish, find, view and broadcast content on
//! the node's network. See `docs/media.md` and `docs/rpc.md`.
//!
//! Content ids are 64 hex characters. Paths given to `stream_publish` are
//! read by the node, so they are paths on the node's machine. Bytes travel
//! as base64 (`stream_read`, `stream_segments`, `stream_broadcast_push`).
//! A node without networking answers [`codes::CLIENT_P2P_DISABLED`].

use std::{sync::Arc, time::Duration};

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use jsonrpsee::{
    core::{async_trait, RpcResult},
    types::ErrorObjectOwned,
};
use rusty_core::state::PurchaseError;
use rusty_media::{
    manifest::{ManifestFields, SignedManifest},
    service::{MediaError, MediaHandle},
    store::ContentInfo,
};
use rusty_shared_types::Hash256;
use serde_json::{json, Value};

use super::{
    api::media::{
        BroadcastStarted, LiveSegment, LiveSegments, MediaApiServer, PublishOptions, Purchase,
        StreamData, Viewing,
    },
    codes, parse_hash, rpc_error, RpcContext,
};

/// The most bytes one `stream_read` returns.
pub const MAX_READ: u64 = 4 << 20;
/// The longest a `stream_read` or `stream_segments` call waits.
pub const MAX_WAIT_MS: u64 = 60_000;
/// The most bytes one `stream_broadcast_push` takes.
pub const MAX_PUSH: usize = 4 << 20;

fn media(ctx: &RpcContext) -> Result<&MediaHandle, ErrorObjectOwned> {
    ctx.media.as_ref().ok_or_else(|| {
        rpc_error(
            codes::CLIENT_P2P_DISABLED,
            "the media layer needs networking (the node runs with --no-network)",
        )
    })
}

/// Maps media errors to RPC errors: unknown content is -5 (as an unknown
/// transaction), bad input -8, the rest -1.
fn media_err(e: MediaError) -> ErrorObjectOwned {
    use rusty_media::store::StoreError;
    let code = match &e {
        MediaError::Store(StoreError::UnknownContent(_)) | MediaError::NotFound(_) => {
            codes::INVALID_ADDRESS_OR_KEY
        }
        MediaError::Store(StoreError::BadRange { .. } | StoreError::RangeTooLarge { .. })
        | MediaError::IsLive(_)
        | MediaError::NotLive(_)
        | MediaError::NotBroadcasting(_)
        | MediaError::Ended(_)
        | MediaError::Manifest(_)
        | MediaError::NotPriced(_)
        | MediaError::Io { .. } => codes::INVALID_PARAMETER,
        MediaError::NotPurchased(_) => codes::WALLET_ERROR,
        _ => codes::MISC_ERROR,
    };
    rpc_error(code, e.to_string())
}

impl PublishOptions {
    fn fields(
        self,
        default_title: &str,
        default_mime: &str,
    ) -> Result<ManifestFields, ErrorObjectOwned> {
        let price = match &self.price {
            Some(v) => super::parse_amount(v)?.units(),
            None => 0,
        };
        Ok(ManifestFields {
            title: self.title.unwrap_or_else(|| default_title.to_owned()),
            description: self.description,
            tags: self.tags,
            mime: self.mime.unwrap_or_else(|| default_mime.to_owned()),
            price,
            encrypted: price > 0,
            created: rusty_core::now(),
        })
    }
}

/// Whether this node can sell at `price`: its wallet receives the payments
/// (the key release pays them there), and the price must cover the release
/// transaction's fee many times over.
async fn check_sellable(ctx: &RpcContext, price: u64) -> Result<(), ErrorObjectOwned> {
    if !ctx.with_state(|s| s.wallet().is_some()).await? {
        return Err(rpc_error(
            codes::WALLET_NOT_FOUND,
            "selling content needs the node's wallet: the key release pays each purchase into it",
        ));
    }
    let release_fee = ctx.wallet_fee_rate.saturating_mul(440).div_ceil(1000);
    let min = release_fee.saturating_mul(10).max(1);
    if price < min {
        let coins = |u: u64| {
            rusty_shared_types::Amount::from_units(u)
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!(
                "price {} is below the minimum {} (ten times the fee of the key release)",
                coins(price),
                coins(min)
            ),
        ));
    }
    Ok(())
}

/// A MIME type from a file name's extension.
pub fn mime_for(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "ts" => "video/mp2t",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "m4a" | "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "augy" => "audio/x-augy",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "pdf" => "application/pdf",
        "txt" | "md" => "text/plain",
        _ => "application/octet-stream",
    }
}

async fn info_json(i: &ContentInfo, providers: Option<usize>, media: &MediaHandle) -> Value {
    // Priced content is stored encrypted; `size` is what a buyer plays.
    let size = if i.encrypted {
        rusty_media::crypt::plain_size(i.size).unwrap_or(0)
    } else {
        i.size
    };
    let mut v = json!({
        "id": i.id.to_string(),
        "title": i.title,
        "tags": i.tags,
        "mime": i.mime,
        "creator": hex::encode(i.creator),
        "size": size,
        "stored_size": i.size,
        "price": rusty_shared_types::Amount::from_units(i.price)
            .map(super::json::amount)
            .unwrap_or(Value::Null),
        "encrypted": i.encrypted,
        "live": i.live,
        "created": i.created,
        "chunks": i.chunk_count,
        "chunks_present": i.chunks_present,
        "bytes_present": i.bytes_present,
        "complete": i.complete,
        "pinned": i.pinned,
        "last_access": i.last_access,
    });
    if let Some(n) = providers {
        v["providers"] = json!(n);
    }
    if i.encrypted {
        v["purchased"] = json!(media.content_key(&i.id).await.is_some());
    }
    v
}

/// `info_json` of each item, with its provider count.
async fn list_json(list: &[ContentInfo], media: &MediaHandle) -> Vec<Value> {
    let mut out = Vec::with_capacity(list.len());
    for i in list {
        let providers = media.providers(&i.id).await.len();
        out.push(info_json(i, Some(providers), media).await);
    }
    out
}

fn manifest_json(m: &SignedManifest) -> Value {
    json!({
        "version": m.manifest.version,
        "description": m.manifest.description,
        "chunk_size": m.manifest.chunk_size,
        "signature": hex::encode(m.signature),
    })
}

fn id_param(s: &str) -> Result<Hash256, ErrorObjectOwned> {
    parse_hash(s, "content id")
}

fn wait_param(ms: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(ms.unwrap_or(default).min(MAX_WAIT_MS))
}

/// Implements [`MediaApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct MediaRpc(pub Arc<RpcContext>);

#[async_trait]
impl MediaApiServer for MediaRpc {
    async fn stream_publish(&self, path: String, opts: Option<PublishOptions>) -> RpcResult<Value> {
        let ctx = &self.0;
        let media = media(ctx)?;
        let file_name = std::path::Path::new(&path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.clone());
        let fields = opts
            .unwrap_or_default()
            .fields(&file_name, mime_for(&path))?;
        if fields.price > 0 {
            check_sellable(ctx, fields.price).await?;
        }
        let id = media
            .publish_file(path.into(), fields)
            .await
            .map_err(media_err)?;
        let (info, _) = media.info(&id).map_err(media_err)?;
        Ok(info_json(&info, None, media).await)
    }

    async fn stream_list(&self) -> RpcResult<Value> {
        let ctx = &self.0;
        let media = media(ctx)?;
        let list = media.list().map_err(media_err)?;
        Ok(Value::Array(list_json(&list, media).await))
    }

    async fn stream_search(&self, query: String) -> RpcResult<Value> {
        let ctx = &self.0;
        let media = media(ctx)?;
        let list = media.search(&query).map_err(media_err)?;
        Ok(Value::Array(list_json(&list, media).await))
    }

    async fn stream_info(&self, id: String) -> RpcResult<Value> {
        let ctx = &self.0;
        let id = id_param(&id)?;
        let media = media(ctx)?;
        let (info, manifest) = media.info(&id).map_err(media_err)?;
        let providers: Vec<String> = media
            .providers(&id)
            .await
            .iter()
            .map(|p| p.to_string())
            .collect();
        let mut v = info_json(&info, Some(providers.len()), media).await;
        v["manifest"] = manifest_json(&manifest);
        v["provider_peers"] = json!(providers);
        if let Some(d) = media.download_status(&id).await {
            v["download"] = json!(d);
        }
        Ok(v)
    }

    async fn stream_view(&self, id: String) -> RpcResult<Viewing> {
        let ctx = &self.0;
        let id = id_param(&id)?;
        let media = media(ctx)?;
        // A live stream is watched; a file downloaded.
        let live = match media.store().manifest(&id) {
            Ok(Some(m)) => Some(m.manifest.live),
            _ => None,
        };
        if live != Some(false) {
            match media.watch(id).await {
                Ok(stream) => {
                    return Ok(Viewing {
                        live: true,
                        status: json!(stream.status().await),
                        playback_url: ctx
                            .playback_base_url
                            .as_ref()
                            .map(|u| format!("{u}/media/{id}/live.m3u8")),
                    })
                }
                Err(MediaError::NotLive(_)) => {}
                Err(e) => return Err(media_err(e)),
            }
        }
        let d = media.download(id).await;
        Ok(Viewing {
            live: false,
            status: json!(d.status()),
            playback_url: ctx
                .playback_base_url
                .as_ref()
                .map(|u| format!("{u}/media/{id}/content")),
        })
    }

    async fn stream_status(&self, id: Option<String>) -> RpcResult<Value> {
        let ctx = &self.0;
        let media = media(ctx)?;
        let id = id.as_deref().map(id_param).transpose()?;
        let downloads: Vec<Value> = media
            .downloads()
            .await
            .into_iter()
            .filter(|d| id.is_none_or(|id| d.id == id.to_string()))
            .map(|d| json!(d))
            .collect();
        let mut live: Vec<Value> = Vec::new();
        for s in media.live_streams().await {
            if id.is_none_or(|id| s.id == id) {
                live.push(json!(s.status().await));
            }
        }
        Ok(json!({
            "downloads": downloads,
            "live": live,
            "service": media.stats(),
        }))
    }

    async fn stream_read(
        &self,
        id: String,
        offset: u64,
        length: u64,
        wait: Option<u64>,
    ) -> RpcResult<StreamData> {
        let ctx = &self.0;
        let id = id_param(&id)?;
        if length == 0 || length > MAX_READ {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!("length must be 1 to {MAX_READ} bytes, got {length}"),
            ));
        }
        let end = offset
            .checked_add(length)
            .ok_or_else(|| rpc_error(codes::INVALID_PARAMETER, "offset + length overflows"))?;
        let media = media(ctx)?;
        let bytes = media
            .read(id, offset, end, wait_param(wait, 30_000))
            .await
            .map_err(media_err)?;
        Ok(StreamData {
            data: BASE64.encode(bytes),
            offset,
        })
    }

    async fn stream_segments(
        &self,
        id: String,
        from: u64,
        wait: Option<u64>,
    ) -> RpcResult<LiveSegments> {
        let ctx = &self.0;
        let id = id_param(&id)?;
        let media = media(ctx)?;
        let stream = match media.live_streams().await.into_iter().find(|s| s.id == id) {
            Some(s) => s,
            None => media.watch(id).await.map_err(media_err)?,
        };
        let got = stream.wait_played(from, 16, wait_param(wait, 10_000)).await;
        let next = got.last().map(|s| s.seq.saturating_add(1)).unwrap_or(from);
        let segments = got
            .iter()
            .map(|s| LiveSegment {
                data: BASE64.encode(&s.data[..]),
                duration_ms: s.duration_ms,
                latency_ms: s.latency_ms,
                seq: s.seq,
            })
            .collect();
        Ok(LiveSegments {
            ended: stream.is_ended(),
            next,
            segments,
            status: json!(stream.status().await),
        })
    }

    async fn stream_broadcast(&self, opts: Option<PublishOptions>) -> RpcResult<BroadcastStarted> {
        let ctx = &self.0;
        let media = media(ctx)?;
        let fields = opts
            .unwrap_or_default()
            .fields("live stream", "video/mp2t")?;
        if fields.price > 0 {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                "live streams are free: priced (encrypted) live segments are not supported",
            ));
        }
        let id = media.broadcast_start(fields).await.map_err(media_err)?;
        Ok(BroadcastStarted { id: id.to_string() })
    }

    async fn stream_broadcast_push(&self, id: String, data: String) -> RpcResult<Value> {
        let ctx = &self.0;
        let id = id_param(&id)?;
        let bytes = BASE64.decode(data.as_bytes()).map_err(|e| {
            rpc_error(
                codes::DESERIALIZATION_ERROR,
                format!("data is not base64: {e}"),
            )
        })?;
        if bytes.len() > MAX_PUSH {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!("at most {MAX_PUSH} bytes per push, got {}", bytes.len()),
            ));
        }
        let media = media(ctx)?;
        media.broadcast_push(id, &bytes).await.map_err(media_err)?;
        Ok(Value::Null)
    }

    async fn stream_broadcast_end(&self, id: String) -> RpcResult<Value> {
        let ctx = &self.0;
        let id = id_param(&id)?;
        let media = media(ctx)?;
        media.broadcast_end(id).await.map_err(media_err)?;
        Ok(Value::Null)
    }

    async fn stream_buy(&self, id: String) -> RpcResult<Purchase> {
        let ctx = &self.0;
        let id = id_param(&id)?;
        let media = media(ctx)?.clone();
        let manifest = media.manifest(id).await.map_err(media_err)?;
        let m = &manifest.manifest;
        if m.price == 0 || !m.encrypted {
            return Err(media_err(MediaError::NotPriced(id)));
        }
        if media.content_key(&id).await.is_some() {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!("content {id} is already yours: its key is on this node"),
            ));
        }
        let purchase = rusty_shared_types::media::ContentPurchase {
            content_id: id,
            creator: m.creator,
            price: m.price,
            buyer_key: media.buyer_key(&id).public(),
        };
        let price = rusty_shared_types::Amount::from_units(m.price)
            .map_err(|_| rpc_error(codes::INVALID_PARAMETER, "the price is out of range"))?;
        let pay = rusty_shared_types::TxOut {
            value: price,
            lock: rusty_core::validation::purchase_lock(&m.creator),
        };
        let fee_rate = ctx.wallet_fee_rate;
        let txid = super::running(ctx.chain.send_purchase(purchase, pay, fee_rate).await)?
            .map_err(|e| match e {
                PurchaseError::Send(send) => super::wallet::send_error(send),
                PurchaseError::Pending(txid) => rpc_error(
                    codes::INVALID_PARAMETER,
                    format!("a purchase of {id} is already waiting to be mined: {txid}"),
                ),
            })?;
        Ok(Purchase {
            content: id.to_string(),
            price: super::json::amount(price),
            txid: txid.to_string(),
        })
    }

    async fn stream_unwatch(&self, id: String) -> RpcResult<Value> {
        let ctx = &self.0;
        let id = id_param(&id)?;
        let media = media(ctx)?;
        Ok(json!(media.unwatch(&id).await))
    }
}
