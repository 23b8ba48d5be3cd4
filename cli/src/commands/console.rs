//! `isms console link`: a sign-in link for the auditor's console, signed with an enrolled key
//! on the auditor's own machine (the key never leaves it; the link carries a signature only).

use std::path::PathBuf;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ledger::UnixMicros;

use crate::client::{block_on, read_key};
use crate::console::{session, url_encode};

/// `isms console ...`.
#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// Print a link that signs you in to a console (`isms serve --http`) for some hours.
    #[command(
        after_help = "Examples:\n  isms console link --key auditor.key --url http://127.0.0.1:8080\n  \
                      isms console link --key auditor.key --url http://ledger.example.org:8080 \
                      --hours 4 --open /registers/risk_register?as_of=2025-03-31"
    )]
    Link(LinkArgs),
}

/// `isms console link`.
#[derive(Args, Debug)]
pub struct LinkArgs {
    /// Your enrolled key (the file `isms keys new` wrote).
    #[arg(long)]
    key: PathBuf,
    /// The console's address, as `isms serve --http` printed it.
    #[arg(long)]
    url: String,
    /// How long the session lasts, in hours (at most 36).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=36))]
    hours: u64,
    /// The page to open after signing in.
    #[arg(long, default_value = "/")]
    open: String,
    /// The ledger's origin line (`isms-ledger/<id>`), if the console cannot be asked for it.
    #[arg(long)]
    origin: Option<String>,
}

/// Asks a console which ledger it shows (`GET /origin`).
pub async fn fetch_origin(url: &str) -> anyhow::Result<String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("{}/origin", url.trim_end_matches('/'))
        .parse()
        .with_context(|| format!("--url {url:?} is not a URL"))?;
    let response = client
        .get(uri)
        .await
        .with_context(|| format!("asking {url} for its ledger's origin"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the origin")?
        .to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{url}/origin answered {status}: is this an isms console?"
    );
    Ok(String::from_utf8_lossy(&body).trim().to_string())
}

/// The sign-in link for a console at `url`.
pub fn link(url: &str, token: &str, open: &str) -> String {
    format!(
        "{}/login?session={}&next={}",
        url.trim_end_matches('/'),
        url_encode(token),
        url_encode(open)
    )
}

/// Runs `isms console ...`.
pub fn run(command: ConsoleCommand) -> anyhow::Result<()> {
    let ConsoleCommand::Link(args) = command;
    let key = read_key(&args.key)?;
    let origin = match args.origin {
        Some(origin) => origin,
        None => block_on(fetch_origin(&args.url))??,
    };
    let expires = UnixMicros::now().0 + i64::try_from(args.hours)? * 3_600_000_000;
    let token = session::token(&key, &origin, expires);
    println!("{}", link(&args.url, &token, &args.open));
    eprintln!(
        "isms: the link signs you in to {origin} until {}; anyone holding it can read as you \
         until then",
        crate::dates::show_time(expires)
    );
    Ok(())
}
