//! `isms key new | enroll | revoke | rotate-ledger-key | list`: key files on disk (mode 0600), and the
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
    /// Hand the ledger's checkpoint-signing key over to a new key (stop the server first).
    #[command(after_help = "Example:\n  isms key new --out ledger-2026.key\n  \
        isms key rotate-ledger-key --data ./isms-data --key admin.key --new-ledger-key \
        ledger-2026.key --reason \"yearly rotation\"\n\n\
        Appends a ledger_key_rotated entry signed by the admin key and by both ledger keys, \
        then replaces DATA/ledger.key with the new key. Checkpoints up to that entry stay \
        signed by the old key, every later one by the new key; verification follows the \
        hand-over from the genesis's key. Witnesses must be given the new verifier key (printed).")]
    RotateLedgerKey(RotateArgs),
    /// List the ledger's keys and its checkpoint-signing key.
    #[command(after_help = "Example:\n  isms key list --key admin.key")]
    List {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
}

/// `isms key rotate-ledger-key`.
#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The stopped server's data folder (its `ledger.key` is the key handed over).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// An admin key file: the hand-over is an admin's act.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The new ledger key file (from `isms key new`); it replaces DATA/ledger.key.
    #[arg(long, value_name = "FILE")]
    new_ledger_key: PathBuf,
    /// Why the key is handed over.
    #[arg(long, default_value = "")]
    reason: String,
}

/// Runs `isms key rotate-ledger-key`.
fn rotate_ledger_key(args: RotateArgs) -> anyhow::Result<()> {
    use crate::server::{read_key_file, LEDGER_KEY_FILE, STORE_DIR};
    let key_path = args.data.join(LEDGER_KEY_FILE);
    let old = read_key_file(&key_path)?;
    let admin = read_key(&args.key)?;
    let new = read_key(&args.new_ledger_key)?;
    let ledger = ledger::Ledger::open(
        args.data.join(STORE_DIR),
        ledger::LedgerConfig::default(),
        Some(old),
    )
    .with_context(|| format!("opening the ledger in {}", args.data.display()))?;
    let appended = ledger
        .rotate_ledger_key(&admin, &new, &args.reason)
        .map_err(|e| anyhow::anyhow!("the hand-over was refused: {e}"))?;
    let vkey = ledger_vkey(ledger.origin(), &new.verifying_key());
    drop(ledger);
    // The hand-over is durable: from now on only the new key opens the ledger.
    // Written beside its name with mode 0600 from the start, flushed, and renamed over it.
    let partial = args.data.join(".ledger.key.partial");
    let _ = std::fs::remove_file(&partial);
    crate::init::write_secret(&partial, &format!("{}\n", hex::encode(new.to_bytes())))?;
    std::fs::rename(&partial, &key_path)
        .with_context(|| format!("replacing {}", key_path.display()))?;
    super::backup::sync_dir(&args.data)?;
    println!(
        "handed the ledger key over at seq {} (checkpoint {} is the old key's last)",
        appended.seq,
        appended.seq.0 + 1
    );
    println!("{} now holds the new key", key_path.display());
    println!("new verifier key: {vkey}");
    println!("give it to the witnesses that follow this ledger; auditors verify from the genesis key as before");
    Ok(())
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
                expected_version: None,
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
                    expected_version: None,
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
        KeyCommand::RotateLedgerKey(args) => rotate_ledger_key(args),
        KeyCommand::List { connect, format } => {
            let (keys, vkey) = block_on(async {
                let mut client = Client::connect(&connect).await?;
                let (origin, ledger_key) = ledger_key_of(&mut client).await?;
                let (entries, _) = fetch_all(&mut client, "reading").await?;
                // The key that signs checkpoints now: the last hand-over's, if any.
                let current = entries
                    .iter()
                    .rev()
                    .find_map(|e| match projections::wire::decode_body(&e.body) {
                        Ok(env) => match env.event {
                            Event::LedgerKeyRotated { new_public_key, .. } => {
                                VerifyingKey::from_bytes(&new_public_key).ok()
                            }
                            _ => None,
                        },
                        Err(_) => None,
                    })
                    .map(|k| ledger_vkey(&origin, &k));
                anyhow::Ok((
                    keys_of(&entries),
                    (ledger_vkey(&origin, &ledger_key), current),
                ))
            })??;
            let (vkey, current) = vkey;
            if format.format() == Format::Json {
                print_json(&serde_json::json!({
                    "ledger_key": vkey,
                    "checkpoint_key_now": current.clone().unwrap_or_else(|| vkey.clone()),
                    "keys": keys,
                }));
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
                println!("ledger key: {vkey}");
                if let Some(current) = &current {
                    println!("checkpoints are signed now by (after a hand-over): {current}");
                }
                println!();
            }
            table.print(format.format());
            Ok(())
        }
    }
}
