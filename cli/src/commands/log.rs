//! `isms log`: the ledger's entries as a person reads them (seq, times, kind, entity, who),
//! filterable by kind, key, entity and time; and the decoding the other commands share
//! (who holds which key, what each entry is about).

use std::collections::HashMap;

use clap::Args;
use ledger::{Entry, KeyId};
use projections::model::Event;
use projections::wire::decode_body;

use crate::bundle::KeyInfo;
use crate::client::{block_on, Client, ConnectArgs};
use crate::dates::{self, BareDate};
use crate::output::{progress, FormatArgs, TextTable};

/// `isms log`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  isms log --key auditor.key\n  isms log --key admin.key \
                        --kind finding_raised --since 2025-03-01 --until 2025-03-31\n  isms log \
                        --key admin.key --entity RISK-001 --json"
)]
pub struct LogArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Only entries of this kind (risk_rescored, evidence_submitted, ...); repeatable.
    #[arg(long)]
    kind: Vec<String>,
    /// Only entries signed by this key (subject, or key id or its hex prefix).
    #[arg(long = "signer")]
    signer: Option<String>,
    /// Only entries about this entity (RISK-001, A.8.8, CA-1, ...).
    #[arg(long)]
    entity: Option<String>,
    /// Only entries recorded at or after this time (a date is its start).
    #[arg(long)]
    since: Option<String>,
    /// Only entries recorded at or before this time (a date is its end).
    #[arg(long)]
    until: Option<String>,
    #[command(flatten)]
    format: FormatArgs,
}

/// One entry as `isms log` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    /// Position.
    pub seq: u64,
    /// Transaction time.
    pub recorded_at: i64,
    /// When it happened.
    pub effective_at: i64,
    /// The event kind (snake_case).
    pub kind: String,
    /// The entity it is about.
    pub entity: String,
    /// Hex key id of the signer.
    pub key_id: String,
    /// Who holds that key.
    pub subject: String,
    /// The client's event id.
    pub event_id: String,
    /// The decoded event (None if the body does not decode).
    pub event: Option<Event>,
}

/// The id of the entity an event is about ("RISK-001", "A.8.8", ...), if any.
pub fn entity_of(event: &Event) -> String {
    use Event as E;
    match event {
        E::Genesis { name, .. } => name.clone(),
        E::KeyEnrolled(k) => k.subject.0.clone(),
        E::KeyRevoked { key_id, .. } => KeyId(*key_id).short(),
        E::ArtifactErased { blake3, .. } => hex::encode(&blake3[..8]),
        E::LedgerKeyRotated { new_public_key, .. } => KeyId::of_public_key(new_public_key).short(),
        E::ScopeDefined(s) => s.organization.clone(),
        E::PolicyApproved { policy_id, .. } => policy_id.0.clone(),
        E::ObjectiveSet { objective_id, .. } | E::ObjectiveMeasured { objective_id, .. } => {
            objective_id.0.clone()
        }
        E::AssetRegistered { asset_id, .. } => asset_id.0.clone(),
        E::RiskIdentified { risk_id, .. }
        | E::RiskAssessed { risk_id, .. }
        | E::RiskRescored { risk_id, .. }
        | E::RiskTreatmentDecided { risk_id, .. }
        | E::RiskAccepted { risk_id, .. }
        | E::RiskClosed { risk_id, .. }
        | E::RiskDetailsChanged { risk_id, .. } => risk_id.0.clone(),
        E::ControlApplicabilitySet { control_id, .. }
        | E::ImplementationStatusChanged { control_id, .. } => control_id.to_string(),
        E::ControlApproved { soa_version, .. } => format!("SoA {soa_version}"),
        E::EvidenceSubmitted { controls, .. } => controls
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        E::AuditPlanned { audit_id, .. }
        | E::AuditCompleted { audit_id, .. }
        | E::ExternalAuditHeld { audit_id, .. } => audit_id.0.clone(),
        E::FindingRaised { finding_id, .. } => finding_id.0.clone(),
        E::CorrectiveActionOpened { action_id, .. }
        | E::RootCauseRecorded { action_id, .. }
        | E::CorrectiveActionClosed { action_id, .. }
        | E::CorrectiveActionVerified { action_id, .. } => action_id.0.clone(),
        E::ManagementReviewHeld { review_id, .. } | E::ReviewDecisionClosed { review_id, .. } => {
            review_id.0.clone()
        }
        E::TrainingRecorded { training_id, .. } => training_id.0.clone(),
        E::IncidentRecorded { incident_id, .. } | E::IncidentClosed { incident_id, .. } => {
            incident_id.0.clone()
        }
        E::SupplierAssessed { supplier_id, .. } => supplier_id.0.clone(),
        E::ContinuityTestHeld { test_id, .. } => test_id.0.clone(),
        E::AccessReviewRecorded { review_id, .. } => review_id.0.clone(),
        E::VulnerabilityRecorded {
            vulnerability_id, ..
        } => vulnerability_id.0.clone(),
        E::PatchComplianceMeasured { scope, .. } => scope.clone(),
        E::AuditEvidenceReceived { audit_id, .. } => audit_id.0.clone(),
        E::LegalRequirementRecorded { requirement_id, .. }
        | E::ComplianceReviewed { requirement_id, .. } => requirement_id.0.clone(),
    }
}

/// The keys the entries enrol and revoke, in enrolment order.
pub fn keys_of(entries: &[Entry]) -> Vec<KeyInfo> {
    let mut keys: Vec<KeyInfo> = Vec::new();
    for entry in entries {
        let Ok(envelope) = decode_body(&entry.body) else {
            continue;
        };
        let mut enrol = |k: &projections::model::KeyEnrolment| {
            keys.push(KeyInfo {
                key_id: KeyId::of_public_key(&k.public_key).to_hex(),
                public_key: hex::encode(k.public_key),
                subject: k.subject.0.clone(),
                roles: k.roles.iter().map(|r| r.name().to_string()).collect(),
                enrolled_at: entry.seq.0,
                revoked_at: None,
            })
        };
        match &envelope.event {
            Event::Genesis { admins, .. } => admins.iter().for_each(&mut enrol),
            Event::KeyEnrolled(k) => enrol(k),
            Event::KeyRevoked { key_id, .. } => {
                let id = hex::encode(key_id);
                for k in keys.iter_mut().filter(|k| k.key_id == id) {
                    k.revoked_at.get_or_insert(entry.seq.0);
                }
            }
            _ => {}
        }
    }
    keys
}

/// Decodes entries into log rows.
pub fn rows_of(entries: &[Entry]) -> Vec<LogRow> {
    let subjects: HashMap<String, String> = keys_of(entries)
        .into_iter()
        .map(|k| (k.key_id, k.subject))
        .collect();
    entries
        .iter()
        .map(|entry| {
            let key_id = entry.key_id.to_hex();
            let decoded = decode_body(&entry.body).ok();
            let subject = subjects.get(&key_id).cloned().unwrap_or_else(|| {
                // Entry 0 is signed by the ledger key, which is not an enrolled key.
                if entry.seq.0 == 0 {
                    "ledger".into()
                } else {
                    "unknown".into()
                }
            });
            LogRow {
                seq: entry.seq.0,
                recorded_at: entry.recorded_at.0,
                effective_at: decoded.as_ref().map_or(0, |e| e.effective_at.0),
                kind: decoded
                    .as_ref()
                    .map_or("undecodable".into(), |e| e.event.kind().name().to_string()),
                entity: decoded
                    .as_ref()
                    .map_or(String::new(), |e| entity_of(&e.event)),
                key_id,
                subject,
                event_id: decoded
                    .as_ref()
                    .map_or(String::new(), |e| e.event_id.clone()),
                event: decoded.map(|e| e.event),
            }
        })
        .collect()
}

/// Reads every entry from the server, with a progress bar on a terminal.
pub async fn fetch_all(
    client: &mut Client,
    what: &str,
) -> anyhow::Result<(Vec<Entry>, isms_proto::v1::Checkpoint)> {
    let checkpoint = client.latest_checkpoint().await?;
    let bar = progress(checkpoint.size, what);
    let entries = client
        .entries(0, checkpoint.size, &|n| bar.set_position(n))
        .await?;
    bar.finish_and_clear();
    Ok((entries, checkpoint))
}

/// Refuses a `--kind` that names no event kind: a typo must not read as "no such entries".
fn check_kinds(kinds: &[String]) -> anyhow::Result<()> {
    let known: Vec<&str> = projections::model::EventKind::ALL
        .iter()
        .map(|k| k.name())
        .collect();
    if let Some(unknown) = kinds.iter().find(|k| !known.contains(&k.as_str())) {
        anyhow::bail!(
            "--kind {unknown:?} is not an event kind; the kinds are: {}",
            known.join(", ")
        );
    }
    Ok(())
}

/// Runs `isms log`.
pub fn run(args: LogArgs) -> anyhow::Result<()> {
    check_kinds(&args.kind)?;
    let since = args
        .since
        .as_deref()
        .map(|t| dates::parse(t, BareDate::StartOfDay))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| dates::parse(t, BareDate::EndOfDay))
        .transpose()?;
    let entries = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        anyhow::Ok(fetch_all(&mut client, "reading").await?.0)
    })??;
    let rows: Vec<LogRow> = rows_of(&entries)
        .into_iter()
        .filter(|r| args.kind.is_empty() || args.kind.contains(&r.kind))
        .filter(|r| {
            args.signer.as_deref().is_none_or(|s| {
                r.subject == s || (s.len() >= 4 && r.key_id.starts_with(&s.to_lowercase()))
            })
        })
        .filter(|r| {
            args.entity
                .as_deref()
                .is_none_or(|e| r.entity.split(' ').any(|x| x == e))
        })
        .filter(|r| since.is_none_or(|t| r.recorded_at >= t))
        .filter(|r| until.is_none_or(|t| r.recorded_at <= t))
        .collect();
    let mut table = TextTable::new([
        "seq",
        "recorded_at",
        "effective_at",
        "kind",
        "entity",
        "signer",
        "key_id",
        "event_id",
    ]);
    for r in rows {
        table.push(vec![
            r.seq.to_string(),
            dates::show_time(r.recorded_at),
            dates::show(r.effective_at),
            r.kind,
            r.entity,
            r.subject,
            r.key_id[..16].to_string(),
            r.event_id,
        ]);
    }
    table.print(args.format.format());
    Ok(())
}
