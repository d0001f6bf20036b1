//! `eth_subscribe` over WebSocket, as ethers' `WebSocketProvider` and
//! viem's `webSocket` transport use it: `newHeads` sends each block that
//! joins the active chain, `logs` each matching log (after a reorg, those
//! of the blocks that left with `removed: true` first), and
//! `newPendingTransactions` the hash of each Ethereum transaction the pool
//! admits. A subscription follows the chain with the same cursor and walk
//! as a polled filter ([`super::filters`]), woken by each new tip.

use std::sync::Arc;

use jsonrpsee::{core::SubscriptionResult, PendingSubscriptionSink, SubscriptionMessage};
use rusty_shared_types::Payload;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::{
    data, evm_params, filter_changes,
    filters::{self, Cursor, FilterKind},
    invalid, json, EthRpc,
};

impl EthRpc {
    pub(super) async fn subscription(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        filter: Option<Value>,
    ) -> SubscriptionResult {
        let kind = match (kind.as_str(), filter) {
            ("newHeads", None) => FilterKind::Blocks,
            ("logs", filter) => {
                let filter = filter.unwrap_or_else(|| Value::Object(Default::default()));
                match json::LogFilter::parse(&filter) {
                    Ok(f) => FilterKind::Logs(Arc::new(f)),
                    Err(e) => {
                        pending.reject(e).await;
                        return Ok(());
                    }
                }
            }
            ("newPendingTransactions", None | Some(Value::Bool(false))) => {
                FilterKind::PendingTransactions
            }
            (other, _) => {
                pending
                    .reject(invalid(format!(
                        "unsupported subscription {other:?} (newHeads, logs, newPendingTransactions)"
                    )))
                    .await;
                return Ok(());
            }
        };
        if matches!(kind, FilterKind::PendingTransactions) {
            return self.pending_transactions(pending).await;
        }
        // Subscribed before the cursor is read: no tip is missed between.
        let mut tips = self.0.chain.subscribe_blocks();
        let start = self
            .query(|s| Ok(Cursor::Block(s.chain().height(), s.chain().tip())))
            .await?;
        let sink = pending.accept().await?;
        let evm = evm_params(&self.0).ok();
        let mut cursor = start;
        loop {
            // A client gone (or unsubscribed) ends the task at once, not at
            // the next notification, which a filter may never match.
            let tip = tokio::select! {
                tip = tips.recv() => tip,
                () = sink.closed() => break,
            };
            match tip {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
            let kind = kind.clone();
            let (items, next) = self
                .query(move |s| {
                    let (FilterKind::Blocks, Cursor::Block(height, hash)) = (&kind, cursor) else {
                        let (changes, next) = filter_changes(s, &kind, cursor)?;
                        let Value::Array(changes) = changes else {
                            return Ok((Vec::new(), next));
                        };
                        return Ok((changes, next));
                    };
                    // newHeads: the blocks themselves, from the same walk a
                    // block filter takes.
                    let walk =
                        filters::walk(s.chain(), (height, hash), filters::MAX_BLOCKS_PER_POLL);
                    let heads = walk
                        .added
                        .iter()
                        .filter_map(|(_, hash)| match &evm {
                            Some(evm) => json::block(s, evm, hash, false).ok(),
                            None => Some(Value::String(data(&hash.0))),
                        })
                        .collect();
                    Ok((heads, Cursor::Block(walk.next.0, walk.next.1)))
                })
                .await?;
            cursor = next;
            for item in items {
                let msg = SubscriptionMessage::from_json(&item)?;
                if sink.send(msg).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// `newPendingTransactions`: each Ethereum transaction the pool admits.
    async fn pending_transactions(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut txs = self.0.chain.subscribe_txs();
        let sink = pending.accept().await?;
        loop {
            let received = tokio::select! {
                tx = txs.recv() => tx,
                () = sink.closed() => break,
            };
            let tx = match received {
                Ok(tx) => tx,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            };
            let Some(Payload::EthTx(p)) = &tx.payload else {
                continue;
            };
            let hash = data(&rusty_crypto::eth::keccak256(&p.raw));
            if sink
                .send(SubscriptionMessage::from_json(&hash)?)
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }
}
