use proptest::prelude::*;

use super::*;
use crate::eth::{address_hex, parse_address, LegacyTx};

/// Signed by ethers v5's `@ethersproject/transactions` with the key
/// 0x4646…46 (tests/eth/tx-vectors.js prints them): an independent
/// implementation's bytes, sender and hash.
const ETHERS_VECTORS: [(&str, &str, &str); 3] = [
    (
        "02f8b3827a69078459682f008506fc23ac00830186a0943535353535353535353535353535353535353535880de0b6b3a764000084deadbeeff838f7941111111111111111111111111111111111111111e1a0000000000000000000000000000000000000000000000000000000000000000101a0e4804673ddf09c0e3dc8bac3c65bf1c150dc94e682dfadc85c2673cd393be763a00be4e0ca5f875af1f3be70a55ff6ff5439880345bd0bcda5353a3d3cc60baf0e",
        "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f",
        "5a8268cda76082e89320893341bc82126e048f28cf2ad68a583bc4254fd2c5e4",
    ),
    (
        "01f86601808504a817c8008252089435353535353535353535353535353535353535350580c001a06c73973398b226d195b27edd8fdbb9e162f46f9a911e0b3f290f6c956a9220a4a04f34756e3ee2d8988b589f5fd59514941fa37f09acdd5909399bf9df07356e58",
        "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f",
        "a5da8c56603077d5bd6d40108ab9ebf63e2504b0cda82ac245126785d24a2a69",
    ),
    (
        "02f853827a698001028307a1208080826000c001a0fb9883565a2a9af16a223697c218ef8c3244b1ab19ddb85db360fa9c78fe7196a05d31b85e6a621a655c2af18e9ff8d2192ab98e895da61f9d95eff89461673583",
        "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f",
        "f8dc14d730309f6175b509273733a8d947007e07dc044df71cf8dbf106b9462b",
    ),
];

#[test]
fn ethers_signed_transactions_decode_to_their_sender_and_hash() {
    for (raw, sender, hash) in ETHERS_VECTORS {
        let raw = hex::decode(raw).unwrap();
        let tx = decode(&raw).unwrap();
        assert_eq!(address_hex(&tx.sender), sender);
        assert_eq!(hex::encode(tx.hash), hash);
        // Re-signing the decoded fields with the same key gives the same
        // bytes (RFC 6979 signatures are deterministic).
        let key = EthKey::from_bytes(&[0x46; 32]).unwrap();
        assert_eq!(tx.fields.sign(&key).unwrap(), raw);
    }
    let tx = decode(&hex::decode(ETHERS_VECTORS[0].0).unwrap()).unwrap();
    let f = &tx.fields;
    assert_eq!(f.tx_type, EthTxType::DynamicFee);
    assert_eq!(f.chain_id, Some(31337));
    assert_eq!((f.nonce, f.gas_limit), (7, 100_000));
    assert_eq!(f.max_priority_fee_per_gas, 1_500_000_000);
    assert_eq!(f.max_fee_per_gas, 30_000_000_000);
    assert_eq!(f.to, Some([0x35; 20]));
    assert_eq!(f.input, vec![0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(f.access_list.len(), 1);
    assert_eq!(f.access_list[0].1[0][31], 1);
    let create = decode(&hex::decode(ETHERS_VECTORS[2].0).unwrap()).unwrap();
    assert_eq!(create.fields.to, None);
}

/// EIP-155's own example: `LegacyTx` signs it to the bytes the EIP gives,
/// and they decode to its key.
#[test]
fn the_eip155_example_decodes() {
    let key = EthKey::from_bytes(&[0x46; 32]).unwrap();
    let tx = LegacyTx {
        nonce: 9,
        gas_price: 20_000_000_000,
        gas_limit: 21_000,
        to: Some([0x35; 20]),
        value: 1_000_000_000_000_000_000,
        data: vec![],
        chain_id: 1,
    };
    assert_eq!(
        hex::encode(tx.signing_hash()),
        "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
    );
    let signed = tx.sign(&key).unwrap();
    assert_eq!(
        hex::encode(&signed.raw),
        "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000\
         8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d89\
         97f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
    );
    let decoded = decode(&signed.raw).unwrap();
    assert_eq!(decoded.sender, key.address());
    assert_eq!(decoded.hash, signed.hash);
    assert_eq!(decoded.fields.chain_id, Some(1));
    assert_eq!(
        decoded.sender,
        parse_address("0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F").unwrap()
    );
}

#[test]
fn unsupported_and_malformed_transactions_say_why() {
    assert_eq!(decode(&[]), Err(EthTxError::Empty));
    assert_eq!(decode(&[3, 0xc0]), Err(EthTxError::Blob));
    assert_eq!(decode(&[4, 0xc0]), Err(EthTxError::SetCode));
    assert_eq!(decode(&[0x7f, 0xc0]), Err(EthTxError::UnknownType(0x7f)));
    assert!(matches!(decode(&[2, 0xc0]), Err(EthTxError::Field(_))));
    assert!(matches!(decode(&[2]), Err(EthTxError::Rlp(_))));
    assert_eq!(
        decode(&vec![0xc0; MAX_TX_SIZE + 1]),
        Err(EthTxError::TooLarge(MAX_TX_SIZE + 1))
    );
    // The high-s twin of a valid signature is refused (EIP-2).
    let raw = hex::decode(ETHERS_VECTORS[1].0).unwrap();
    let tx = decode(&raw).unwrap();
    let mut fields_items = tx.fields.unsigned_items();
    let item = rlp::decode(&raw[1..]).unwrap();
    let sig = &item.list().unwrap()[8..];
    let s = word(&sig[2], "s").unwrap();
    let order: [u8; 32] =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            .unwrap()
            .try_into()
            .unwrap();
    let high_s = sub_be(&order, &s);
    let parity = 1 - sig[0].uint().unwrap();
    fields_items.extend([
        Item::uint(parity),
        Item::Bytes(sig[1].bytes().unwrap().to_vec()),
        Item::uint_bytes(&high_s),
    ]);
    let twin = [&[1u8][..], &rlp::encode(&Item::List(fields_items))].concat();
    assert!(matches!(decode(&twin), Err(EthTxError::Signature(_))));
}

/// a − b for 256-bit big-endian numbers (a ≥ b).
fn sub_be(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    out
}

fn fields() -> impl Strategy<Value = EthTxFields> {
    (
        prop_oneof![
            Just(EthTxType::Legacy),
            Just(EthTxType::AccessList),
            Just(EthTxType::DynamicFee)
        ],
        proptest::option::of(1u64..1_000_000),
        any::<u64>(),
        (any::<u64>(), any::<u64>()),
        any::<u64>(),
        proptest::option::of(any::<[u8; 20]>()),
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<u8>(), 0..100),
        proptest::collection::vec(
            (
                any::<[u8; 20]>(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..3),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(tx_type, chain_id, nonce, (a, b), gas_limit, to, value, input, list)| {
                let (tip, max) = (u128::from(a.min(b)), u128::from(a.max(b)));
                let typed = tx_type != EthTxType::Legacy;
                EthTxFields {
                    tx_type,
                    chain_id: if typed {
                        Some(chain_id.unwrap_or(1))
                    } else {
                        chain_id
                    },
                    nonce,
                    max_priority_fee_per_gas: if typed && tx_type == EthTxType::DynamicFee {
                        tip
                    } else {
                        max
                    },
                    max_fee_per_gas: max,
                    gas_limit,
                    to,
                    value,
                    input,
                    access_list: if typed { list } else { Vec::new() },
                }
            },
        )
}

proptest! {
    #[test]
    fn signed_transactions_decode_to_their_fields_and_signer(fields in fields(), key in any::<[u8; 32]>()) {
        let Ok(key) = EthKey::from_bytes(&key) else { return Ok(()) };
        let raw = fields.sign(&key).unwrap();
        let tx = decode(&raw).unwrap();
        prop_assert_eq!(&tx.fields, &fields);
        prop_assert_eq!(tx.sender, key.address());
        prop_assert_eq!(tx.hash, keccak256(&raw));
        // A sender known by hash gives the same transaction, and an
        // unknown hash falls back to recovery.
        let known = decode_known(&raw, |h| (*h == tx.hash).then_some(tx.sender)).unwrap();
        prop_assert_eq!(&known, &tx);
        let other = decode_known(&raw, |_| None).unwrap();
        prop_assert_eq!(&other, &tx);
    }

    #[test]
    fn a_flipped_bit_never_yields_the_same_transaction(fields in fields(), bit in any::<usize>()) {
        let key = EthKey::from_bytes(&[9; 32]).unwrap();
        let raw = fields.sign(&key).unwrap();
        let mut flipped = raw.clone();
        let at = bit % (raw.len() * 8);
        flipped[at / 8] ^= 1 << (at % 8);
        if let Ok(tx) = decode(&flipped) {
            prop_assert!(tx.fields != fields || tx.sender != key.address());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
    }
}
