//! Receipts of a block's Ethereum transactions, as stored (one record per
//! block) and as `eth_getTransactionReceipt` and `eth_getLogs` read them.

use rusty_shared_types::encoding::{write_compact_size, Decode, DecodeResult, Encode, Reader};
use rusty_vm::evm::EvmLog;

/// Most logs one transaction may leave in a receipt we decode, and most
/// topics per log (the EVM's LOG4).
const MAX_LOGS: usize = 100_000;
const MAX_TOPICS: usize = 4;
/// Bounds a stored log's data when decoding (a block's gas bounds it far
/// lower).
const MAX_LOG_DATA: usize = 32 * 1024 * 1024;

/// What one Ethereum transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthReceipt {
    /// keccak256 of the raw transaction.
    pub tx_hash: [u8; 32],
    /// Position among the block's transactions (the coinbase is 0).
    pub index: u32,
    pub from: [u8; 20],
    pub to: Option<[u8; 20]>,
    pub contract_address: Option<[u8; 20]>,
    /// EIP-2718 type.
    pub tx_type: u8,
    pub success: bool,
    pub gas_used: u64,
    /// Gas used by the block's Ethereum transactions up to this one.
    pub cumulative_gas_used: u64,
    pub effective_gas_price: u128,
    pub logs: Vec<EvmLog>,
}

/// The receipts of one block, in block order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockReceipts(pub Vec<EthReceipt>);

fn write_address(out: &mut Vec<u8>, a: &Option<[u8; 20]>) {
    match a {
        None => out.push(0),
        Some(a) => {
            out.push(1);
            out.extend_from_slice(a);
        }
    }
}

fn read_address(r: &mut Reader<'_>) -> DecodeResult<Option<[u8; 20]>> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.array()?)),
        t => Err(rusty_shared_types::DecodeError::InvalidTag {
            what: "optional address",
            tag: u64::from(t),
        }),
    }
}

impl Encode for EthReceipt {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tx_hash);
        self.index.encode_to(out);
        out.extend_from_slice(&self.from);
        write_address(out, &self.to);
        write_address(out, &self.contract_address);
        out.push(self.tx_type);
        self.success.encode_to(out);
        self.gas_used.encode_to(out);
        self.cumulative_gas_used.encode_to(out);
        out.extend_from_slice(&self.effective_gas_price.to_be_bytes());
        write_compact_size(out, self.logs.len() as u64);
        for log in &self.logs {
            out.extend_from_slice(&log.address);
            write_compact_size(out, log.topics.len() as u64);
            for t in &log.topics {
                out.extend_from_slice(t);
            }
            rusty_shared_types::encoding::write_bytes(out, &log.data);
        }
    }
}

impl Decode for EthReceipt {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let tx_hash = r.array()?;
        let index = r.u32()?;
        let from = r.array()?;
        let to = read_address(r)?;
        let contract_address = read_address(r)?;
        let tx_type = r.u8()?;
        let success = bool::decode_from(r)?;
        let gas_used = r.u64()?;
        let cumulative_gas_used = r.u64()?;
        let effective_gas_price = u128::from_be_bytes(r.array()?);
        let n = r.length("logs", MAX_LOGS, 21)?;
        let mut logs = Vec::with_capacity(n);
        for _ in 0..n {
            let address = r.array()?;
            let topics = r.length("topics", MAX_TOPICS, 32)?;
            let topics = (0..topics)
                .map(|_| r.array())
                .collect::<DecodeResult<Vec<[u8; 32]>>>()?;
            let data = r.bytes("log data", MAX_LOG_DATA)?;
            logs.push(EvmLog {
                address,
                topics,
                data,
            });
        }
        Ok(EthReceipt {
            tx_hash,
            index,
            from,
            to,
            contract_address,
            tx_type,
            success,
            gas_used,
            cumulative_gas_used,
            effective_gas_price,
            logs,
        })
    }
}

impl Encode for BlockReceipts {
    fn encode_to(&self, out: &mut Vec<u8>) {
        rusty_shared_types::encoding::write_vec(out, &self.0);
    }
}

impl Decode for BlockReceipts {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(BlockReceipts(r.vec("receipts", 1_000_000, 80)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusty_shared_types::decode_exact;

    #[test]
    fn receipts_round_trip_and_truncation_is_an_error() {
        let receipt = EthReceipt {
            tx_hash: [1; 32],
            index: 3,
            from: [2; 20],
            to: None,
            contract_address: Some([3; 20]),
            tx_type: 2,
            success: true,
            gas_used: 21_000,
            cumulative_gas_used: 42_000,
            effective_gas_price: 1_000_000_007,
            logs: vec![EvmLog {
                address: [4; 20],
                topics: vec![[5; 32], [6; 32]],
                data: vec![7, 8, 9],
            }],
        };
        let block = BlockReceipts(vec![receipt.clone(), receipt]);
        let bytes = block.encode();
        assert_eq!(decode_exact::<BlockReceipts>(&bytes).unwrap(), block);
        for cut in 0..bytes.len() {
            assert!(decode_exact::<BlockReceipts>(&bytes[..cut]).is_err());
        }
    }
}
