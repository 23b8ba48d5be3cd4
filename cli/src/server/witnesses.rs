//! The ledger server's side of witnessing: one tokio task per configured witness sends the
//! latest checkpoint with a consistency proof from the size that witness last cosigned
//! (C2SP tlog-witness `add-checkpoint`, through [`WitnessClient`]), verifies the cosignature
//! it gets back and keeps it beside the checkpoint ([`Ledger::add_cosignatures`]).
//!
//! The tasks only read the durable head; the sequencer knows nothing of them, so a witness
//! that is down or slow never blocks or slows an append. A failed attempt (transport error,
//! timeout, refusal) is retried after an exponential back-off; once the witness answers again,
//! it catches up with one consistency proof from the size it holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use ledger::cosignature::SignatureLine;
use ledger::{Ledger, UnixMicros, WitnessVerifier};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::witness::{AddCheckpointOutcome, Timeouts, WitnessClient};

/// The shortest wait after a failed attempt; it doubles with each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between attempts at a witness that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One witness the server asks for cosignatures (`isms serve --witness NAME=URL,VKEY`).
#[derive(Clone, Debug)]
pub struct WitnessConfig {
    /// A local label for status and metrics.
    pub name: String,
    /// The witness's submission prefix, e.g. `http://witness.example.org:7380`.
    pub url: String,
    /// The witness's verifier key: only lines that verify with it are kept.
    pub verifier: WitnessVerifier,
}

impl WitnessConfig {
    /// Parses `NAME=URL,VKEY`, where VKEY is the verifier key `isms witness init` prints, or a
    /// file holding it (such as the witness's `witness.vkey`). The URL holds no comma and the
    /// verifier key may hold `+`, so the value splits at the first `=` and the first comma.
    pub fn parse(spec: &str) -> anyhow::Result<WitnessConfig> {
        let usage = "expected NAME=URL,VKEY (e.g. w1=http://witness.example.org:7380,witness.example.org/w1+07be827a+BMqT...)";
        let (name, rest) = spec.split_once('=').context(usage)?;
        let (url, vkey) = rest.split_once(',').context(usage)?;
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            anyhow::bail!("--witness {spec:?}: the NAME must be non-empty, without spaces");
        }
        let vkey_text = match std::fs::read_to_string(vkey.trim()) {
            Ok(text) => text,
            Err(_) => vkey.to_string(),
        };
        let verifier = WitnessVerifier::parse(vkey_text.trim())
            .with_context(|| format!("--witness {name}: the witness's verifier key"))?;
        // Checks the URL now rather than at the first attempt.
        WitnessClient::new(url.trim(), Timeouts::default())
            .with_context(|| format!("--witness {name}"))?;
        Ok(WitnessConfig {
            name: name.to_string(),
            url: url.trim().trim_end_matches('/').to_string(),
            verifier,
        })
    }
}

/// When the tasks send, and how long they wait.
#[derive(Clone, Copy, Debug)]
pub struct WitnessSchedule {
    /// How often each witness is offered the latest checkpoint.
    pub interval: Duration,
    /// Offer a checkpoint only once the ledger grew by at least this many entries since the
    /// witness last cosigned (1: any growth).
    pub step: u64,
    /// Connect and request timeouts of each call.
    pub timeouts: Timeouts,
}

impl Default for WitnessSchedule {
    fn default() -> Self {
        WitnessSchedule {
            interval: Duration::from_secs(10),
            step: 1,
            timeouts: Timeouts::default(),
        }
    }
}

/// Where one witness stands, as the server last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessReport {
    /// The local label.
    pub name: String,
    /// The submission prefix.
    pub url: String,
    /// The verifier key string.
    pub witness_key: String,
    /// The largest checkpoint size it cosigned that the server keeps, and the cosignature's
    /// timestamp (unix seconds, the witness's clock).
    pub cosigned: Option<(u64, u64)>,
    /// The last failure, cleared by the next cosignature.
    pub last_error: Option<String>,
    /// Consecutive failed attempts.
    pub failures: u32,
}

/// The witnesses of one server: their reports (for GetStatus and `/metrics`) and the tasks
/// that keep them. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Witnesses {
    reports: Arc<Vec<Mutex<WitnessReport>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Witnesses {
    /// Starts one task per witness. Each first looks up the last cosignature of its witness
    /// the ledger keeps (so a restarted server resumes from there) and stops when `shutdown`
    /// turns true.
    pub async fn start(
        ledger: Arc<Ledger>,
        configs: Vec<WitnessConfig>,
        schedule: WitnessSchedule,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Witnesses> {
        let mut reports = Vec::new();
        let mut clients = Vec::new();
        for config in &configs {
            let cosigned = {
                let (ledger, verifier) = (ledger.clone(), config.verifier.clone());
                tokio::task::spawn_blocking(move || last_cosigned(&ledger, &verifier))
                    .await
                    .context("reading the kept cosignatures")??
            };
            reports.push(Mutex::new(WitnessReport {
                name: config.name.clone(),
                url: config.url.clone(),
                witness_key: config.verifier.to_string(),
                cosigned,
                last_error: None,
                failures: 0,
            }));
            clients.push(WitnessClient::new(&config.url, schedule.timeouts)?);
        }
        let witnesses = Witnesses {
            reports: Arc::new(reports),
            tasks: Arc::default(),
        };
        let mut tasks = Vec::new();
        for (index, (config, client)) in configs.into_iter().zip(clients).enumerate() {
            let follower = Follower {
                ledger: ledger.clone(),
                config,
                client,
                schedule,
                witnesses: witnesses.clone(),
                index,
            };
            tasks.push(tokio::spawn(follower.run(shutdown.clone())));
        }
        *witnesses.tasks.lock().expect("tasks lock") = tasks;
        Ok(witnesses)
    }

    /// Every witness's report, in the order configured.
    pub fn reports(&self) -> Vec<WitnessReport> {
        self.reports
            .iter()
            .map(|r| r.lock().expect("report lock").clone())
            .collect()
    }

    /// Stops the tasks and waits until they ended (none holds the ledger afterwards).
    pub async fn stop(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut WitnessReport)) {
        f(&mut self.reports[index].lock().expect("report lock"));
    }
}

/// The largest size whose kept cosignatures include a line of `verifier` that verifies, and
/// that line's timestamp.
fn last_cosigned(
    ledger: &Ledger,
    verifier: &WitnessVerifier,
) -> anyhow::Result<Option<(u64, u64)>> {
    let Some((size, _)) = ledger.latest_cosignature(|line| verifier.names(line))? else {
        return Ok(None);
    };
    let Some(checkpoint) = ledger.checkpoint_at(size)? else {
        return Ok(None);
    };
    let note = ledger.with_cosignatures(checkpoint)?.note;
    Ok(verifier.verify_note(&note).ok().map(|t| (size, t)))
}

/// One witness's task.
struct Follower {
    ledger: Arc<Ledger>,
    config: WitnessConfig,
    client: WitnessClient,
    schedule: WitnessSchedule,
    witnesses: Witnesses,
    index: usize,
}

/// What one round achieved.
enum Round {
    /// Nothing to send (no growth by the step yet).
    Idle,
    /// The witness cosigned this size at this time.
    Cosigned(u64, u64),
}

impl Follower {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let wait = match self.round().await {
                Ok(Round::Idle) => self.schedule.interval,
                Ok(Round::Cosigned(size, at)) => {
                    backoff = FIRST_BACKOFF;
                    self.witnesses.update(self.index, |r| {
                        r.cosigned = Some((size, at));
                        r.last_error = None;
                        r.failures = 0;
                    });
                    tracing::info!(witness = %self.config.name, size, "cosigned");
                    self.schedule.interval
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    tracing::warn!(witness = %self.config.name, error = %why, retry_in = ?backoff, "witness attempt failed");
                    self.witnesses.update(self.index, |r| {
                        r.last_error = Some(why);
                        r.failures = r.failures.saturating_add(1);
                    });
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF.max(self.schedule.interval));
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Offers the latest checkpoint if the ledger grew by the step since the last cosignature.
    async fn round(&self) -> anyhow::Result<Round> {
        let size = self.ledger.head().size;
        let held = self.witnesses.reports[self.index]
            .lock()
            .expect("report lock")
            .cosigned
            .map(|(s, _)| s);
        let due = match held {
            None => size > 0,
            Some(held) => size >= held.saturating_add(self.schedule.step.max(1)),
        };
        if !due {
            return Ok(Round::Idle);
        }
        let ledger = self.ledger.clone();
        let checkpoint = tokio::task::spawn_blocking(move || ledger.latest_checkpoint())
            .await
            .context("reading the latest checkpoint")??;
        let size = checkpoint.checkpoint.size;
        let mut old = held.unwrap_or(0).min(size);
        // At most two requests: the one from what we think the witness holds, and, after a
        // 409, one from the size it says it holds.
        for attempt in 0..2 {
            let proof = self.proof(old, size).await?;
            match self
                .client
                .add_checkpoint(old, &proof, &checkpoint.note)
                .await?
            {
                AddCheckpointOutcome::Cosigned { lines } => {
                    return self.keep(size, &checkpoint.note, &lines).await;
                }
                AddCheckpointOutcome::Conflict { size: theirs } if attempt == 0 => {
                    if theirs > size {
                        anyhow::bail!(
                            "the witness holds a checkpoint of size {theirs}, larger than this ledger's {size}"
                        );
                    }
                    old = theirs;
                }
                AddCheckpointOutcome::Conflict { size: theirs } => {
                    anyhow::bail!("the witness answered 409 twice (it holds size {theirs})")
                }
                AddCheckpointOutcome::Refused { status, message } => {
                    anyhow::bail!("the witness refused checkpoint {size} ({status}): {message}")
                }
            }
        }
        unreachable!("the loop returns or fails on its second attempt")
    }

    async fn proof(&self, old: u64, size: u64) -> anyhow::Result<Vec<[u8; 32]>> {
        if old == 0 || old == size {
            return Ok(Vec::new());
        }
        let ledger = self.ledger.clone();
        Ok(
            tokio::task::spawn_blocking(move || ledger.consistency_proof(old, size))
                .await
                .context("building the consistency proof")??,
        )
    }

    /// Verifies the witness's lines over the note and keeps those of this witness.
    async fn keep(&self, size: u64, note: &str, lines: &[String]) -> anyhow::Result<Round> {
        let verifier = &self.config.verifier;
        let mine: String = lines
            .iter()
            .filter(|l| SignatureLine::parse(l).is_ok_and(|line| verifier.names(&line)))
            .map(String::as_str)
            .collect();
        if mine.is_empty() {
            anyhow::bail!(
                "the witness answered 200 without a line by {} (is --witness given the right key?)",
                verifier.name()
            );
        }
        let cosigned = ledger::cosignature::add_cosignatures(note, &mine)?;
        let at = verifier
            .verify_note(&cosigned)
            .context("the witness's cosignature does not verify")?;
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || ledger.add_cosignatures(size, &mine))
            .await
            .context("keeping the cosignature")??;
        Ok(Round::Cosigned(size, at))
    }
}

/// Seconds from a cosignature's timestamp to now (0 if the witness's clock is ahead).
pub fn age_seconds(cosigned_at: u64) -> u64 {
    let now = u64::try_from(UnixMicros::now().0 / 1_000_000).unwrap_or(0);
    now.saturating_sub(cosigned_at)
}

/// Parses a duration flag: a whole number followed by `ms`, `s` or `m` (`500ms`, `10s`, `2m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 500ms, 10s or 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VKEY: &str =
        "witness.example.org/w1+07be827a+BMqTrBcFGHBx1nuDx/8O/oEI6OxFMFdddyaHkzPb2r58";

    #[test]
    fn a_witness_flag_splits_at_the_first_equals_sign_and_the_first_comma() {
        let config = WitnessConfig::parse(&format!("w1=http://127.0.0.1:7380/,{VKEY}"))
            .expect("a valid --witness");
        assert_eq!(config.name, "w1");
        assert_eq!(config.url, "http://127.0.0.1:7380");
        assert_eq!(config.verifier.to_string(), VKEY);
    }

    #[test]
    fn a_witness_flag_without_its_key_is_refused_with_the_expected_shape() {
        let e = WitnessConfig::parse("w1=http://127.0.0.1:7380").expect_err("no key");
        assert!(format!("{e:#}").contains("NAME=URL,VKEY"), "{e:#}");
        let e = WitnessConfig::parse(&format!("w1=https://x:1,{VKEY}")).expect_err("not http");
        assert!(format!("{e:#}").contains("http://host:port"), "{e:#}");
    }

    #[test]
    fn durations_take_ms_s_and_m() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
