//! `rusty-cli masternode`: operator keys (made here, no node needed) and
//! the node's masternode RPCs.

use std::{io::Write, path::Path};

use anyhow::{bail, Context, Result};
use rusty_crypto::bls;
use rusty_node::rpc::{
    api::masternode::{MasternodeApiClient, MasternodeRequest, ProtxRequest},
    remote::Remote,
};
use serde_json::{json, Value};

use crate::{
    args::{GlobalArgs, MasternodeCommand, RegisterArgs},
    client::{connect, print, rpc_error},
};

/// Parses an operator key file's text: the 32-byte BLS secret key as 64
/// hex characters, surrounding whitespace ignored.
pub fn parse_operator_key(text: &str) -> Result<bls::SecretKey> {
    let text = text.trim();
    if text.len() != 64 {
        bail!(
            "expected 64 hex characters (a BLS secret key from `rusty-cli masternode genkey`), \
             found {} characters",
            text.chars().count()
        );
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| {
        anyhow::anyhow!(
            "expected 64 hex characters (a BLS secret key from `rusty-cli masternode genkey`), \
             found other characters"
        )
    })?;
    bls::SecretKey::from_bytes(&bytes).map_err(|_| {
        anyhow::anyhow!("not a valid BLS secret key (zero or not below the group order)")
    })
}

/// Reads an operator key file; every error names the file.
pub fn read_operator_key(path: &Path) -> Result<bls::SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the operator key file {}", path.display()))?;
    parse_operator_key(&text).with_context(|| format!("operator key file {}", path.display()))
}

/// Writes a new key file readable by its owner only; refuses to replace an
/// existing file (it may hold a registered masternode's key).
fn write_key_file(path: &Path, key: &bls::SecretKey) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; not overwriting an operator key (choose another --out)",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("creating {}", path.display()))
        }
    })?;
    writeln!(file, "{}", hex::encode(key.to_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn generate() -> bls::SecretKey {
    bls::SecretKey::generate(&mut rand::rngs::OsRng)
}

/// `masternode genkey`'s JSON without `--out`.
fn key_json(key: &bls::SecretKey) -> Value {
    json!({
        "secret": hex::encode(key.to_bytes()),
        "public": hex::encode(key.public_key().to_bytes()),
    })
}

/// `protx register`'s request.
fn register_request(a: &RegisterArgs) -> Result<ProtxRequest> {
    let pubkey = match (&a.operator_pubkey, &a.operator_key) {
        (Some(hex), _) => hex.trim().to_string(),
        (None, Some(path)) => hex::encode(read_operator_key(path)?.public_key().to_bytes()),
        (None, None) => bail!("give --operator-pubkey HEX or --operator-key FILE"),
    };
    Ok(ProtxRequest::Register {
        operator_pub_key: pubkey,
        service: a.service.clone(),
        operator_reward_bps: Some(a.reward.into()),
        payout_address: a.payout.clone(),
    })
}

fn protx(c: &Remote, request: ProtxRequest) -> Result<Value> {
    let (command, a1, a2, a3, a4) = request.into_params();
    c.run(c.api().protx(command, a1, a2, a3, a4))
        .map_err(rpc_error)
}

fn masternode(c: &Remote, request: MasternodeRequest) -> Result<Value> {
    let (command, a1) = request.into_params();
    c.run(c.api().masternode(command, a1)).map_err(rpc_error)
}

pub fn run(g: &GlobalArgs, cmd: &MasternodeCommand) -> Result<()> {
    match cmd {
        MasternodeCommand::Genkey { out } => {
            let key = generate();
            match out {
                Some(path) => {
                    write_key_file(path, &key)?;
                    println!("{}", hex::encode(key.public_key().to_bytes()));
                }
                None => print(&key_json(&key)),
            }
        }
        MasternodeCommand::Register(a) => {
            let request = register_request(a)?;
            print(&protx(&connect(g)?, request)?);
        }
        MasternodeCommand::Status => print(&masternode(&connect(g)?, MasternodeRequest::Status)?),
        MasternodeCommand::List => print(&masternode(&connect(g)?, MasternodeRequest::List)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn key_files() {
        let key = generate();
        let hex = hex::encode(key.to_bytes());
        let parsed = parse_operator_key(&format!("  {hex}\r\n")).unwrap();
        assert_eq!(parsed.to_bytes(), key.to_bytes());

        let e = parse_operator_key("abcd").unwrap_err().to_string();
        assert!(
            e.contains("64 hex characters") && e.contains("found 4"),
            "{e}"
        );
        let e = parse_operator_key(&"zz".repeat(32))
            .unwrap_err()
            .to_string();
        assert!(e.contains("other characters"), "{e}");
        let e = parse_operator_key(&"00".repeat(32))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid BLS secret key"), "{e}");
        let e = parse_operator_key(&"ff".repeat(32))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid BLS secret key"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.key");
        write_key_file(&path, &key).unwrap();
        assert_eq!(read_operator_key(&path).unwrap().to_bytes(), key.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = write_key_file(&path, &generate()).unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(
            read_operator_key(&path).unwrap().to_bytes(),
            key.to_bytes(),
            "the first key survives"
        );

        let missing = dir.path().join("missing.key");
        let e = format!("{:#}", read_operator_key(&missing).unwrap_err());
        assert!(e.contains(&missing.display().to_string()), "{e}");
        std::fs::write(&missing, "nonsense").unwrap();
        let e = format!("{:#}", read_operator_key(&missing).unwrap_err());
        assert!(
            e.contains(&missing.display().to_string()) && e.contains("64 hex"),
            "{e}"
        );
    }

    #[test]
    fn genkey_json_and_register_request() {
        let key = generate();
        let v = key_json(&key);
        assert_eq!(v["secret"].as_str().map(str::len), Some(64));
        assert_eq!(v["public"].as_str().map(str::len), Some(96));

        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("op.key");
        write_key_file(&path, &key).unwrap();
        let service =
            "/ip4/192.0.2.1/tcp/8433/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        let a = RegisterArgs {
            operator_pubkey: None,
            operator_key: Some(path),
            service: service.into(),
            reward: 150,
            payout: None,
        };
        // The positional parameters as before: register, key, service,
        // reward (and no payout).
        let (command, a1, a2, a3, a4) = register_request(&a).unwrap().into_params();
        assert_eq!(
            json!([command, a1, a2, a3, a4]),
            json!(["register", v["public"], service, 150, null])
        );
        let a = RegisterArgs {
            operator_pubkey: Some("ab".into()),
            operator_key: None,
            payout: Some("drsc1xyz".into()),
            ..a
        };
        let (command, a1, a2, a3, a4) = register_request(&a).unwrap().into_params();
        assert_eq!(
            json!([command, a1, a2, a3, a4]),
            json!(["register", "ab", service, 150, "drsc1xyz"])
        );
    }
}
