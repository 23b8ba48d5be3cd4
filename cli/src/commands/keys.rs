//! `isms key new | enroll | revoke | list`: key files on disk (mode 0600), and the
//! `key_enrolled` / `key_revoked` entries an admin signs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ed25519_dalek::{SigningKey, VerifyingKey};
use ledger::{ChainVerifier, KeyId};
use projections::model::{Event, KeyEnrolment, Role, Subject};

use super::log::{fetch_all, keys_of};
use super::submit::{append_events, report, Pending};
use crate::bundle::ledger_vkey;
use crate::client::{block_on, read_key, Client, ConnectArgs};
use crate::output::{print_json, Format, FormatArgs, TextTable};

/// `isms key ...`.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Make a new ed25519 key file (mode 0600) and its public key file (FILE.pub).
    #[command(after_help = "Example:\n  isms key new --out auditor.key")]
    New {
        /// The key file to write (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Enrol a public key with roles (signed by an admin key).
    #[command(
        after_help = "Example:\n  isms key enroll --key admin.key --public-key \
                            auditor.key.pub --subject auditor@example.com --role auditor"
    )]
    Enroll(EnrollArgs),
    /// Revoke a key from the next entry on (signed by an admin key).
    #[command(after_help = "Example:\n  isms key revoke --key admin.key \
                            --reason \"left the company\" auditor@example.com")]
    Revoke(RevokeArgs),
    /// List the ledger's keys and its checkpoint-signing key.
    #[command(after_help = "Example:\n  isms key list --key admin.key")]
    List {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
}

/// `isms key enroll`.
#[derive(Args, Debug)]
pub struct EnrollArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The public key: 64 hex digits, or a file holding them (FILE.pub from `key new`).
    #[arg(long)]
    public_key: String,
    /// Who holds the key (a person or a system).
    #[arg(long)]
    subject: String,
    /// A role: admin, agent, risk_owner, control_owner, auditor, management, reader
    /// (repeatable, or comma-separated).
    #[arg(long = "role", required = true, value_delimiter = ',')]
    roles: Vec<String>,
    #[command(flatten)]
    format: FormatArgs,
}

/// `isms key revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The key to revoke: its key id (hex) or the subject holding it.
    target: String,
    /// Why.
    #[arg(long, default_value = "")]
    reason: String,
    #[command(flatten)]
    format: FormatArgs,
}

/// Writes a new secret file readable by its owner only (0600), refusing to overwrite.
pub use crate::init::write_secret;

/// Makes a key file and its `.pub` beside it; returns the key.
pub fn new_key_file(path: &Path) -> anyhow::Result<SigningKey> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_secret(path, &format!("{}\n", hex::encode(key.to_bytes())))?;
    let public = pub_path(path);
    std::fs::write(
        &public,
        format!("{}\n", hex::encode(key.verifying_key().to_bytes())),
    )
    .with_context(|| format!("writing {}", public.display()))?;
    Ok(key)
}

fn pub_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn parse_public_key(text: &str) -> anyhow::Result<VerifyingKey> {
    let raw_text = if Path::new(text).is_file() {
        let content = std::fs::read_to_string(text).with_context(|| format!("reading {text}"))?;
        // A secret key file also names its public key; accept it for convenience.
        if !text.ends_with(".pub") {
            if let Ok(key) = read_key(Path::new(text)) {
                return Ok(key.verifying_key());
            }
        }
        content
    } else {
        text.to_string()
    };
    let mut raw = [0u8; 32];
    hex::decode_to_slice(raw_text.trim(), &mut raw)
        .context("--public-key: expected 64 hex digits or a file holding them")?;
    VerifyingKey::from_bytes(&raw).context("--public-key: not a valid ed25519 key")
}

/// The ledger's origin and checkpoint-signing key, read from its genesis entry.
pub async fn ledger_key_of(client: &mut Client) -> anyhow::Result<(String, VerifyingKey)> {
    let genesis = client.entry(0).await?;
    let verifier = ChainVerifier::from_genesis(&genesis.encode())
        .map_err(|e| anyhow::anyhow!("the genesis entry does not verify: {e}"))?;
    let g = verifier.genesis();
    Ok((
        g.origin.clone(),
        VerifyingKey::from_bytes(&g.ledger_public_key)?,
    ))
}

/// Runs `isms key ...`.
pub fn run(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::New { out } => {
            let key = new_key_file(&out)?;
            let public = key.verifying_key().to_bytes();
            println!("key file:   {} (mode 0600; keep it secret)", out.display());
            println!(
                "public key: {} (in {})",
                hex::encode(public),
                pub_path(&out).display()
            );
            println!("key id:     {}", KeyId::of_public_key(&public).to_hex());
            Ok(())
        }
        KeyCommand::Enroll(args) => {
            let public = parse_public_key(&args.public_key)?;
            let roles = args
                .roles
                .iter()
                .map(|r| {
                    Role::parse(r).with_context(|| {
                        format!(
                            "--role {r:?}: roles are admin, agent, risk_owner, control_owner, \
                             auditor, management, reader"
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let key_id = KeyId::of_public_key(&public.to_bytes());
            let pending = Pending {
                event_id: format!("key-enroll-{}", &key_id.to_hex()[..16]),
                effective_at: ledger::UnixMicros::now().0,
                event: Event::KeyEnrolled(KeyEnrolment {
                    public_key: public.to_bytes(),
                    subject: Subject(args.subject.clone()),
                    roles,
                }),
                artifacts: Vec::new(),
            };
            let outcomes = block_on(async {
                let mut client = Client::connect(&args.connect).await?;
                let ledger_id = client.ledger_id().await?;
                append_events(&mut client, &ledger_id, vec![pending]).await
            })??;
            report(&outcomes, args.format.format())
        }
        KeyCommand::Revoke(args) => {
            let outcomes = block_on(async {
                let mut client = Client::connect(&args.connect).await?;
                let (entries, _) = fetch_all(&mut client, "reading").await?;
                let keys = keys_of(&entries);
                let target = args.target.to_lowercase();
                let matching: Vec<_> = keys
                    .iter()
                    .filter(|k| k.revoked_at.is_none())
                    .filter(|k| {
                        k.subject == args.target
                            || (target.len() >= 8 && k.key_id.starts_with(&target))
                    })
                    .collect();
                let key = match matching.as_slice() {
                    [one] => *one,
                    [] => anyhow::bail!("no active key has id or subject {:?}", args.target),
                    many => anyhow::bail!(
                        "{:?} matches {} active keys; give the key id ({})",
                        args.target,
                        many.len(),
                        many.iter()
                            .map(|k| &k.key_id[..16])
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let mut key_id = [0u8; 32];
                hex::decode_to_slice(&key.key_id, &mut key_id)?;
                let pending = Pending {
                    event_id: format!("key-revoke-{}", &key.key_id[..16]),
                    effective_at: ledger::UnixMicros::now().0,
                    event: Event::KeyRevoked {
                        key_id,
                        reason: args.reason.clone(),
                    },
                    artifacts: Vec::new(),
                };
                let ledger_id = client.ledger_id().await?;
                append_events(&mut client, &ledger_id, vec![pending]).await
            })??;
            report(&outcomes, args.format.format())
        }
        KeyCommand::List { connect, format } => {
            let (keys, vkey) = block_on(async {
                let mut client = Client::connect(&connect).await?;
                let (origin, ledger_key) = ledger_key_of(&mut client).await?;
                let (entries, _) = fetch_all(&mut client, "reading").await?;
                anyhow::Ok((keys_of(&entries), ledger_vkey(&origin, &ledger_key)))
            })??;
            if format.format() == Format::Json {
                print_json(&serde_json::json!({ "ledger_key": vkey, "keys": keys }));
                return Ok(());
            }
            let mut table = TextTable::new([
                "key_id",
                "subject",
                "roles",
                "enrolled_at",
                "revoked_at",
                "public_key",
            ]);
            for k in keys {
                table.push(vec![
                    k.key_id[..16].to_string(),
                    k.subject,
                    k.roles.join(","),
                    k.enrolled_at.to_string(),
                    k.revoked_at.map(|s| s.to_string()).unwrap_or_default(),
                    k.public_key,
                ]);
            }
            if format.format() == Format::Table {
                println!("ledger key: {vkey}\n");
            }
            table.print(format.format());
            Ok(())
        }
    }
}
