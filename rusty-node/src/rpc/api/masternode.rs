//! Masternodes and quorums, in Dash's shapes: `protx`, `masternode` and
//! `quorum` (each a subcommand followed by positional arguments),
//! `getbestchainlock` and `dkginfo`.
//!
//! Dash's methods take a subcommand name, then arguments whose meaning and
//! type depend on it (`protx revoke <proTxHash> <reason: number>` but
//! `protx register <key> <service: string> …`). The trait therefore takes
//! the subcommand as a [`Subcommand`] and the arguments as positional
//! slots; both sides go through one typed request per method
//! ([`ProtxRequest`], [`MasternodeRequest`], [`QuorumRequest`]): the
//! client builds its slots with `…Request::into_params`, the server reads
//! them back with `…Request::from_params`, which checks each argument's
//! type only when the subcommand reads it (as the hand-written handlers
//! did: a slot a subcommand does not use is ignored).

use std::fmt;

use jsonrpsee::{
    core::RpcResult,
    proc_macros::rpc,
    types::{
        error::{ErrorCode, INVALID_PARAMS_MSG},
        ErrorObject, ErrorObjectOwned,
    },
};
use serde::{
    de::{self, DeserializeOwned, Unexpected},
    Deserialize, Deserializer, Serialize, Serializer,
};
use serde_json::Value;

use crate::rpc::{codes, rpc_error};

/// Masternodes, quorums, ChainLocks and this node's DKG sessions.
#[rpc(server, client)]
pub trait MasternodeApi {
    /// `register <operatorPubKey> <service> [operatorRewardBps]
    /// [payoutAddress]`, `update_service <proTxHash> <service>`,
    /// `revoke <proTxHash> [reason]`, `list [registered|valid]
    /// [detailed]`, `info <proTxHash>`.
    #[method(name = "protx")]
    async fn protx(
        &self,
        command: Subcommand<ProtxCommand>,
        arg1: Option<Value>,
        arg2: Option<Value>,
        arg3: Option<Value>,
        arg4: Option<Value>,
    ) -> RpcResult<Value>;

    /// `status`, `list`, `count`, `winners [count]`.
    #[method(name = "masternode")]
    async fn masternode(
        &self,
        command: Subcommand<MasternodeCommand>,
        arg1: Option<Value>,
    ) -> RpcResult<Value>;

    /// `list [count]`, `info <quorumHash>`, `members <quorumHash>`,
    /// `dkgstatus`.
    #[method(name = "quorum")]
    async fn quorum(
        &self,
        command: Subcommand<QuorumCommand>,
        arg1: Option<Value>,
    ) -> RpcResult<Value>;

    /// The best ChainLock this node knows.
    #[method(name = "getbestchainlock")]
    async fn get_best_chainlock(&self) -> RpcResult<Value>;

    /// This node's part in DKGs, and what it should expect next.
    #[method(name = "dkginfo")]
    async fn dkg_info(&self) -> RpcResult<Value>;
}

// ---- subcommands ----

/// A method's subcommand names.
pub trait SubcommandName: Copy + 'static {
    /// The method, for the error message.
    const METHOD: &'static str;
    /// Every subcommand with its wire name, in the order the error lists
    /// them.
    const TABLE: &'static [(&'static str, Self)];

    /// The wire name.
    fn name(self) -> &'static str;

    /// Looks `given` up; the error (Dash's -8) lists the valid names.
    fn parse(given: &str) -> Result<Self, ErrorObjectOwned> {
        Self::TABLE
            .iter()
            .find(|(name, _)| *name == given)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::TABLE.iter().map(|(n, _)| *n).collect();
                rpc_error(
                    codes::INVALID_PARAMETER,
                    format!(
                        "{} subcommand must be one of {}; got \"{given}\"",
                        Self::METHOD,
                        names.join(", ")
                    ),
                )
            })
    }
}

/// A subcommand as the caller named it. Any string deserializes, so that
/// an unknown name is answered with the method's -8 error listing the valid
/// names ([`Subcommand::known`]) rather than jsonrpsee's generic -32602;
/// a non-string is -32602, as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subcommand<C> {
    Known(C),
    Unknown(String),
}

impl<C: SubcommandName> Subcommand<C> {
    /// The subcommand, or the -8 error for an unknown name.
    pub fn known(self) -> Result<C, ErrorObjectOwned> {
        match self {
            Subcommand::Known(c) => Ok(c),
            Subcommand::Unknown(s) => C::parse(&s),
        }
    }
}

impl<C> From<C> for Subcommand<C> {
    fn from(c: C) -> Self {
        Subcommand::Known(c)
    }
}

impl<C: SubcommandName> Serialize for Subcommand<C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Subcommand::Known(c) => s.serialize_str(c.name()),
            Subcommand::Unknown(name) => s.serialize_str(name),
        }
    }
}

impl<'de, C: SubcommandName> Deserialize<'de> for Subcommand<C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(match C::parse(&name) {
            Ok(c) => Subcommand::Known(c),
            Err(_) => Subcommand::Unknown(name),
        })
    }
}

/// Declares a subcommand enum with its wire names.
macro_rules! subcommands {
    ($(#[$doc:meta])* $name:ident, $method:literal { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($variant),+
        }

        impl SubcommandName for $name {
            const METHOD: &'static str = $method;
            const TABLE: &'static [(&'static str, Self)] = &[$(($wire, $name::$variant)),+];

            fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl $name {
            /// Looks a name up (the -8 error lists the valid ones).
            pub fn parse(s: &str) -> Result<Self, ErrorObjectOwned> {
                <Self as SubcommandName>::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

subcommands!(
    /// The subcommands of `protx`.
    ProtxCommand, "protx" {
        Register = "register",
        UpdateService = "update_service",
        Revoke = "revoke",
        List = "list",
        Info = "info",
    }
);

subcommands!(
    /// The subcommands of `masternode`.
    MasternodeCommand, "masternode" {
        Status = "status",
        List = "list",
        Count = "count",
        Winners = "winners",
    }
);

subcommands!(
    /// The subcommands of `quorum`.
    QuorumCommand, "quorum" {
        List = "list",
        Info = "info",
        Members = "members",
        DkgStatus = "dkgstatus",
    }
);

// ---- positional arguments ----

/// The argument slots after the subcommand, read in order as jsonrpsee's
/// `ParamsSequence` reads them: a required argument that is absent (or
/// `null`) and an argument of the wrong type are -32602 Invalid params.
struct Slots<const N: usize> {
    slots: [Option<Value>; N],
    next: usize,
}

impl<const N: usize> Slots<N> {
    fn new(slots: [Option<Value>; N]) -> Self {
        Slots { slots, next: 0 }
    }

    fn optional<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ErrorObjectOwned> {
        let slot = self.slots.get_mut(self.next).and_then(Option::take);
        self.next += 1;
        slot.map(|v| serde_json::from_value(v).map_err(invalid_params))
            .transpose()
    }

    fn required<T: DeserializeOwned>(&mut self) -> Result<T, ErrorObjectOwned> {
        self.optional()?
            .ok_or_else(|| invalid_params("No more params"))
    }
}

/// jsonrpsee's own error for a parameter that does not parse.
fn invalid_params(e: impl ToString) -> ErrorObjectOwned {
    ErrorObject::owned(
        ErrorCode::InvalidParams.code(),
        INVALID_PARAMS_MSG,
        Some(e.to_string()),
    )
}

fn slot<T: Serialize>(v: T) -> Option<Value> {
    // Strings, numbers and their options always serialize.
    serde_json::to_value(v).ok().filter(|v| !v.is_null())
}

/// A boolean argument read as Dash's `ParseBoolV` reads it: a JSON
/// boolean, the strings `true`/`false`, `yes`/`no`, `1`/`0` (any case) or
/// the numbers 1 and 0. Another value is serde's "invalid value" (-8 once
/// the parameter layer translates it), another type "invalid type" (-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DashBool(bool);

impl<'de> Deserialize<'de> for DashBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> de::Visitor<'de> for Visitor {
            type Value = DashBool;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean (true, false, yes, no, 1 or 0)")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<DashBool, E> {
                Ok(DashBool(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DashBool, E> {
                match v {
                    0 => Ok(DashBool(false)),
                    1 => Ok(DashBool(true)),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DashBool, E> {
                match v {
                    0 => Ok(DashBool(false)),
                    1 => Ok(DashBool(true)),
                    _ => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DashBool, E> {
                match v.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => Ok(DashBool(true)),
                    "false" | "no" | "0" => Ok(DashBool(false)),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
        }

        d.deserialize_any(Visitor)
    }
}

/// `protx`'s subcommand with its arguments (unvalidated: the server checks
/// keys, services and ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtxRequest {
    Register {
        /// 96 hex characters.
        operator_pub_key: String,
        /// The node's public multiaddr with its peer id.
        service: String,
        operator_reward_bps: Option<u64>,
        payout_address: Option<String>,
    },
    UpdateService {
        pro_tx_hash: String,
        service: String,
    },
    Revoke {
        pro_tx_hash: String,
        /// Dash's reason code, 0 to 3.
        reason: Option<u64>,
    },
    List {
        /// `registered` (the default) or `valid`.
        filter: Option<String>,
        /// Dash's `detailed`: each masternode as `protx info` shows it
        /// instead of its proTxHash (default false).
        detailed: Option<bool>,
    },
    Info {
        pro_tx_hash: String,
    },
}

/// The parameters of [`MasternodeApiClient::protx`].
pub type ProtxParams = (
    Subcommand<ProtxCommand>,
    Option<Value>,
    Option<Value>,
    Option<Value>,
    Option<Value>,
);

impl ProtxRequest {
    /// Reads the arguments `command` takes.
    pub fn from_params(
        command: ProtxCommand,
        args: [Option<Value>; 4],
    ) -> Result<Self, ErrorObjectOwned> {
        let mut a = Slots::new(args);
        Ok(match command {
            ProtxCommand::Register => ProtxRequest::Register {
                operator_pub_key: a.required()?,
                service: a.required()?,
                operator_reward_bps: a.optional()?,
                payout_address: a.optional()?,
            },
            ProtxCommand::UpdateService => ProtxRequest::UpdateService {
                pro_tx_hash: a.required()?,
                service: a.required()?,
            },
            ProtxCommand::Revoke => ProtxRequest::Revoke {
                pro_tx_hash: a.required()?,
                reason: a.optional()?,
            },
            ProtxCommand::List => ProtxRequest::List {
                filter: a.optional()?,
                detailed: a.optional::<DashBool>()?.map(|b| b.0),
            },
            ProtxCommand::Info => ProtxRequest::Info {
                pro_tx_hash: a.required()?,
            },
        })
    }

    /// The positional parameters of the call.
    pub fn into_params(self) -> ProtxParams {
        match self {
            ProtxRequest::Register {
                operator_pub_key,
                service,
                operator_reward_bps,
                payout_address,
            } => (
                ProtxCommand::Register.into(),
                slot(operator_pub_key),
                slot(service),
                slot(operator_reward_bps),
                slot(payout_address),
            ),
            ProtxRequest::UpdateService {
                pro_tx_hash,
                service,
            } => (
                ProtxCommand::UpdateService.into(),
                slot(pro_tx_hash),
                slot(service),
                None,
                None,
            ),
            ProtxRequest::Revoke {
                pro_tx_hash,
                reason,
            } => (
                ProtxCommand::Revoke.into(),
                slot(pro_tx_hash),
                slot(reason),
                None,
                None,
            ),
            ProtxRequest::List { filter, detailed } => (
                ProtxCommand::List.into(),
                slot(filter),
                slot(detailed),
                None,
                None,
            ),
            ProtxRequest::Info { pro_tx_hash } => (
                ProtxCommand::Info.into(),
                slot(pro_tx_hash),
                None,
                None,
                None,
            ),
        }
    }
}

/// `masternode`'s subcommand with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasternodeRequest {
    Status,
    List,
    Count,
    /// As Dash: the payees of the last `count` blocks up to the tip
    /// (default 10, at most 1000), then the projected payees of the next
    /// 20.
    Winners {
        count: Option<u64>,
    },
}

impl MasternodeRequest {
    /// Reads the arguments `command` takes.
    pub fn from_params(
        command: MasternodeCommand,
        arg1: Option<Value>,
    ) -> Result<Self, ErrorObjectOwned> {
        let mut a = Slots::new([arg1]);
        Ok(match command {
            MasternodeCommand::Status => MasternodeRequest::Status,
            MasternodeCommand::List => MasternodeRequest::List,
            MasternodeCommand::Count => MasternodeRequest::Count,
            MasternodeCommand::Winners => MasternodeRequest::Winners {
                count: a.optional()?,
            },
        })
    }

    /// The positional parameters of the call.
    pub fn into_params(self) -> (Subcommand<MasternodeCommand>, Option<Value>) {
        match self {
            MasternodeRequest::Status => (MasternodeCommand::Status.into(), None),
            MasternodeRequest::List => (MasternodeCommand::List.into(), None),
            MasternodeRequest::Count => (MasternodeCommand::Count.into(), None),
            MasternodeRequest::Winners { count } => {
                (MasternodeCommand::Winners.into(), slot(count))
            }
        }
    }
}

/// `quorum`'s subcommand with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumRequest {
    /// The newest `count` mined quorums of each type; without a count, the
    /// active (signing) ones.
    List {
        count: Option<u64>,
    },
    Info {
        quorum_hash: String,
    },
    Members {
        quorum_hash: String,
    },
    DkgStatus,
}

impl QuorumRequest {
    /// Reads the arguments `command` takes.
    pub fn from_params(
        command: QuorumCommand,
        arg1: Option<Value>,
    ) -> Result<Self, ErrorObjectOwned> {
        let mut a = Slots::new([arg1]);
        Ok(match command {
            QuorumCommand::List => QuorumRequest::List {
                count: a.optional()?,
            },
            QuorumCommand::Info => QuorumRequest::Info {
                quorum_hash: a.required()?,
            },
            QuorumCommand::Members => QuorumRequest::Members {
                quorum_hash: a.required()?,
            },
            QuorumCommand::DkgStatus => QuorumRequest::DkgStatus,
        })
    }

    /// The positional parameters of the call.
    pub fn into_params(self) -> (Subcommand<QuorumCommand>, Option<Value>) {
        match self {
            QuorumRequest::List { count } => (QuorumCommand::List.into(), slot(count)),
            QuorumRequest::Info { quorum_hash } => (QuorumCommand::Info.into(), slot(quorum_hash)),
            QuorumRequest::Members { quorum_hash } => {
                (QuorumCommand::Members.into(), slot(quorum_hash))
            }
            QuorumRequest::DkgStatus => (QuorumCommand::DkgStatus.into(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_round_trip_through_positional_params() {
        let protx = [
            ProtxRequest::Register {
                operator_pub_key: "ab".into(),
                service: "/ip4/1.2.3.4/tcp/1".into(),
                operator_reward_bps: Some(150),
                payout_address: None,
            },
            ProtxRequest::UpdateService {
                pro_tx_hash: "00".into(),
                service: "s".into(),
            },
            ProtxRequest::Revoke {
                pro_tx_hash: "00".into(),
                reason: Some(2),
            },
            ProtxRequest::List {
                filter: None,
                detailed: None,
            },
            ProtxRequest::List {
                filter: Some("valid".into()),
                detailed: Some(true),
            },
            ProtxRequest::List {
                filter: None,
                detailed: Some(false),
            },
            ProtxRequest::Info {
                pro_tx_hash: "00".into(),
            },
        ];
        for r in protx {
            let (c, a1, a2, a3, a4) = r.clone().into_params();
            let c = c.known().expect("known");
            assert_eq!(ProtxRequest::from_params(c, [a1, a2, a3, a4]).ok(), Some(r));
        }
        for r in [
            MasternodeRequest::Status,
            MasternodeRequest::Winners { count: Some(3) },
        ] {
            let (c, a1) = r.into_params();
            let c = c.known().expect("known");
            assert_eq!(MasternodeRequest::from_params(c, a1).ok(), Some(r));
        }
        for r in [
            QuorumRequest::Members {
                quorum_hash: "00".into(),
            },
            QuorumRequest::List { count: None },
            QuorumRequest::List { count: Some(2) },
        ] {
            let (c, a1) = r.clone().into_params();
            let c = c.known().expect("known");
            assert_eq!(QuorumRequest::from_params(c, a1).ok(), Some(r));
        }
    }

    /// `protx list`'s `detailed` as Dash's `ParseBoolV` reads it.
    #[test]
    fn detailed_is_read_as_dash_reads_booleans() {
        let detailed = |v: Value| {
            ProtxRequest::from_params(
                ProtxCommand::List,
                [Some(json!("registered")), Some(v), None, None],
            )
            .map(|r| match r {
                ProtxRequest::List { detailed, .. } => detailed,
                other => panic!("{other:?}"),
            })
        };
        for yes in [
            json!(true),
            json!("true"),
            json!("YES"),
            json!("1"),
            json!(1),
        ] {
            assert_eq!(detailed(yes.clone()).ok(), Some(Some(true)), "{yes}");
        }
        for no in [
            json!(false),
            json!("False"),
            json!("no"),
            json!("0"),
            json!(0),
        ] {
            assert_eq!(detailed(no.clone()).ok(), Some(Some(false)), "{no}");
        }
        // The parameter layer turns serde's messages into Core's codes:
        // another value -8, another type -3.
        for bad in [json!("maybe"), json!(2), json!(-1), json!([true])] {
            let e = detailed(bad.clone()).expect_err("not a boolean");
            assert_eq!(e.code(), ErrorCode::InvalidParams.code(), "{bad}");
        }
        let e = detailed(json!("maybe")).expect_err("not a boolean");
        let data = e.data().map(|d| d.get().to_string()).unwrap_or_default();
        assert!(data.contains("invalid value"), "{data}");
        let e = detailed(json!([true])).expect_err("not a boolean");
        let data = e.data().map(|d| d.get().to_string()).unwrap_or_default();
        assert!(data.contains("invalid type"), "{data}");
        assert_eq!(
            ProtxRequest::from_params(ProtxCommand::List, [None, None, None, None]).ok(),
            Some(ProtxRequest::List {
                filter: None,
                detailed: None
            })
        );
    }

    #[test]
    fn subcommands_and_slots_as_the_hand_parsing_was() {
        let wire: Subcommand<ProtxCommand> = serde_json::from_value(json!("destroy")).unwrap();
        let e = wire.known().expect_err("unknown");
        assert_eq!(e.code(), codes::INVALID_PARAMETER);
        assert_eq!(
            e.message(),
            "protx subcommand must be one of register, update_service, revoke, list, info; \
             got \"destroy\""
        );
        assert!(serde_json::from_value::<Subcommand<ProtxCommand>>(json!(5)).is_err());
        assert_eq!(
            serde_json::to_value(Subcommand::from(QuorumCommand::DkgStatus)).unwrap(),
            json!("dkgstatus")
        );

        // A missing or mistyped argument is jsonrpsee's -32602.
        let e = ProtxRequest::from_params(ProtxCommand::Info, [None, None, None, None])
            .expect_err("missing");
        assert_eq!(e.code(), ErrorCode::InvalidParams.code());
        let e = ProtxRequest::from_params(
            ProtxCommand::Revoke,
            [Some(json!("00")), Some(json!("soon")), None, None],
        )
        .expect_err("mistyped");
        assert_eq!(e.code(), ErrorCode::InvalidParams.code());
        // A slot the subcommand does not read is ignored.
        assert_eq!(
            MasternodeRequest::from_params(MasternodeCommand::Status, Some(json!("x"))).ok(),
            Some(MasternodeRequest::Status)
        );
    }
}
