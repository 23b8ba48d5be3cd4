//! The decisions a manager, an owner or an auditor records one at a time: `isms risk accept`,
//! `isms action root-cause | close | verify`, `isms audit complete`, `isms control approve`.
//! Each is one event, signed with the caller's key and appended on its own; the same
//! decisions can be kept as YAML (`isms submit --help` lists the shapes).

use clap::{Args, Subcommand};
use projections::model::{ActionId, AuditId, Event, RiskId};
use projections::ControlId;

use super::submit::{submit_all_or_nothing, Pending};
use crate::client::ConnectArgs;
use crate::dates::{self, BareDate};
use crate::output::FormatArgs;

/// What every decision command takes besides its own arguments.
#[derive(Args, Debug)]
pub struct Common {
    #[command(flatten)]
    connect: ConnectArgs,
    /// When the decision was taken (a date or RFC 3339); default now.
    #[arg(long)]
    effective: Option<String>,
    #[command(flatten)]
    format: FormatArgs,
}

/// `isms risk ...`.
#[derive(Subcommand, Debug)]
pub enum RiskCommand {
    /// Record management's acceptance of a risk (a management key). Above the appetite
    /// (score 5 and more) a justification is required.
    #[command(after_help = "Example:\n  isms risk accept --key ceo.key RISK-004 \
        --justification \"cost of redundancy exceeds the impact; reviewed yearly\"")]
    Accept {
        /// The risk id.
        risk_id: String,
        /// Why the risk is accepted (required above the appetite).
        #[arg(long, default_value = "")]
        justification: String,
        #[command(flatten)]
        common: Common,
    },
}

/// `isms action ...`.
#[derive(Subcommand, Debug)]
pub enum ActionCommand {
    /// Record the root cause found for an open corrective action.
    #[command(
        after_help = "Example:\n  isms action root-cause --key owner.key CA-2025-001 \
        --cause \"no owner for the patch window\""
    )]
    RootCause {
        /// The corrective action id.
        action_id: String,
        /// The root cause.
        #[arg(long)]
        cause: String,
        #[command(flatten)]
        common: Common,
    },
    /// Close a corrective action with what was done (it then awaits verification).
    #[command(
        after_help = "Example:\n  isms action close --key owner.key CA-2025-001 \
        --resolution \"patch window owned by the platform team\""
    )]
    Close {
        /// The corrective action id.
        action_id: String,
        /// What was done.
        #[arg(long)]
        resolution: String,
        #[command(flatten)]
        common: Common,
    },
    /// Record an auditor's verification of a closed action: effective, or not (it reopens).
    #[command(
        after_help = "Example:\n  isms action verify --key auditor.key CA-2025-001 \
        --outcome effective --note \"two patch cycles on time\"\n  \
        isms action verify --key auditor.key CA-2025-002 --outcome not-effective --note \"recurred\""
    )]
    Verify {
        /// The corrective action id.
        action_id: String,
        /// Whether the action worked: effective, or not-effective (it reopens).
        #[arg(long, value_enum)]
        outcome: Outcome,
        /// What the auditor saw.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        common: Common,
    },
}

/// An auditor's verdict on a corrective action.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It worked.
    Effective,
    /// It did not; the action reopens.
    NotEffective,
}

/// `isms audit ...`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Mark a planned internal audit completed, with its summary (an auditor key).
    #[command(
        after_help = "Example:\n  isms audit complete --key auditor.key IA-2025-01 \
        --summary \"2 minor nonconformities, 1 observation\""
    )]
    Complete {
        /// The audit id.
        audit_id: String,
        /// The audit's outcome in a sentence.
        #[arg(long)]
        summary: String,
        #[command(flatten)]
        common: Common,
    },
}

/// `isms control ...`.
#[derive(Subcommand, Debug)]
pub enum ControlCommand {
    /// Record management's approval of the SoA (every assessed control, or those named).
    #[command(
        after_help = "Example:\n  isms control approve --key ceo.key --soa-version 2025.1\n  \
        isms control approve --key ceo.key --soa-version 2025.2 --control A.8.8 --control A.8.28"
    )]
    Approve {
        /// The SoA version approved.
        #[arg(long)]
        soa_version: String,
        /// A control to approve (repeatable); none: every control assessed so far.
        #[arg(long = "control", value_name = "A.x.y")]
        controls: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// Appends one decision on its own and prints its receipt (or why it was refused).
fn record(common: Common, event: Event) -> anyhow::Result<()> {
    let effective_at = match &common.effective {
        Some(t) => dates::parse(t, BareDate::StartOfDay)?,
        None => ledger::UnixMicros::now().0,
    };
    let entity = super::log::entity_of(&event);
    let kind = event.kind().name();
    // Content-derived: a retried command is recognised ("already recorded at seq N").
    let digest = blake3::hash(format!("{kind}|{entity}|{event:?}|{effective_at}").as_bytes());
    let pending = Pending {
        event_id: format!("{kind}-{entity}-{}", &digest.to_hex()[..12]),
        effective_at,
        event,
        artifacts: Vec::new(),
        expected_version: None,
    };
    submit_all_or_nothing(&common.connect, common.format.format(), vec![pending])
}

fn control_ids(raw: &[String]) -> anyhow::Result<Vec<ControlId>> {
    raw.iter()
        .map(|c| {
            ControlId::parse(c).map_err(|p| anyhow::anyhow!("--control {c:?}: {}", p.explain()))
        })
        .collect()
}

/// Runs `isms risk ...`.
pub fn run_risk(command: RiskCommand) -> anyhow::Result<()> {
    match command {
        RiskCommand::Accept {
            risk_id,
            justification,
            common,
        } => record(
            common,
            Event::RiskAccepted {
                risk_id: RiskId::parse("risk id", &risk_id)?,
                justification,
            },
        ),
    }
}

/// Runs `isms action ...`.
pub fn run_action(command: ActionCommand) -> anyhow::Result<()> {
    match command {
        ActionCommand::RootCause {
            action_id,
            cause,
            common,
        } => record(
            common,
            Event::RootCauseRecorded {
                action_id: ActionId::parse("action id", &action_id)?,
                root_cause: cause,
            },
        ),
        ActionCommand::Close {
            action_id,
            resolution,
            common,
        } => record(
            common,
            Event::CorrectiveActionClosed {
                action_id: ActionId::parse("action id", &action_id)?,
                resolution,
            },
        ),
        ActionCommand::Verify {
            action_id,
            outcome,
            note,
            common,
        } => record(
            common,
            Event::CorrectiveActionVerified {
                action_id: ActionId::parse("action id", &action_id)?,
                effective: outcome == Outcome::Effective,
                note,
            },
        ),
    }
}

/// Runs `isms audit ...`.
pub fn run_audit(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Complete {
            audit_id,
            summary,
            common,
        } => record(
            common,
            Event::AuditCompleted {
                audit_id: AuditId::parse("audit id", &audit_id)?,
                summary,
            },
        ),
    }
}

/// Runs `isms control ...`.
pub fn run_control(command: ControlCommand) -> anyhow::Result<()> {
    match command {
        ControlCommand::Approve {
            soa_version,
            controls,
            common,
        } => record(
            common,
            Event::ControlApproved {
                control_ids: control_ids(&controls)?,
                soa_version,
            },
        ),
    }
}
