//! The client commands of `isms`: one module per command group, each a gRPC client
//! of `isms serve` except `key new`, `verify --offline` and `demo`. main.rs flattens
//! [`ClientCommand`] into its own subcommands and maps [`VerificationFailed`] to exit code 1.

pub mod apply;
pub mod backup;
pub mod console;
pub mod demo;
pub mod evidence;
pub mod keys;
pub mod log;
pub mod manage;
pub mod oscal;
pub mod prove;
pub mod receipt;
pub mod records;
pub mod registers;
pub mod report;
pub mod restore;
pub mod spreadsheet;
pub mod status;
pub mod submit;
pub mod verify;
pub mod witness;

use std::fmt;

use anyhow::Context as _;

use clap::Subcommand;

/// "The ledger (or bundle, or proof) did not verify": the binary exits with 1, not 2.
#[derive(Debug)]
pub struct VerificationFailed(pub String);

impl fmt::Display for VerificationFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "verification FAILED: {}", self.0)
    }
}

impl std::error::Error for VerificationFailed {}

/// Whether an error means "did not verify" (exit 1) rather than "could not run" (exit 2).
pub fn is_verification_failure(e: &anyhow::Error) -> bool {
    e.downcast_ref::<VerificationFailed>().is_some()
}

/// The client commands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Make, enrol, revoke and list keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Submit ISMS records from YAML or JSON files in the seed guide's own shapes.
    Submit(submit::SubmitArgs),
    /// Bring the registers to the state YAML files describe: plan, then append all or nothing.
    Apply(apply::ApplyArgs),
    /// Upload evidence artifacts and record them against controls.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Management's decisions on risks (accept).
    #[command(subcommand)]
    Risk(manage::RiskCommand),
    /// A corrective action's lifecycle: root cause, close, verify.
    #[command(subcommand)]
    Action(manage::ActionCommand),
    /// Complete an internal audit.
    #[command(subcommand)]
    Audit(manage::AuditCommand),
    /// Management's approval of the Statement of Applicability.
    #[command(subcommand)]
    Control(manage::ControlCommand),
    /// Show a register (risks, SoA, findings, actions, evidence, KPIs, readiness).
    Register(registers::RegisterArgs),
    /// What changed in the registers between two dates.
    Diff(registers::DiffArgs),
    /// The audits or corrective actions as of a date, as an OSCAL 1.1.3 JSON document.
    Oscal(oscal::OscalArgs),
    /// List the ledger's entries, filtered by kind, key, entity or time.
    Log(log::LogArgs),
    /// Verify the whole ledger (from the server, or offline from an exported bundle).
    Verify(verify::VerifyArgs),
    /// Write a bundle (entries, checkpoints, keys, optionally artifacts) for offline checks.
    Export(verify::ExportArgs),
    /// Get inclusion and consistency proofs as JSON, or check one offline.
    #[command(subcommand)]
    Prove(prove::ProveCommand),
    /// Check receipts kept by `isms submit --receipts`, offline or with a witness policy.
    #[command(subcommand)]
    Receipt(receipt::ReceiptCommand),
    /// Sign in to the auditor's console (`isms serve --http`).
    #[command(subcommand)]
    Console(console::ConsoleCommand),
    /// Write a self-contained HTML report of the ISMS as of a date.
    Report(report::ReportArgs),
    /// The server's head and where each witness stands (last cosigned size, age, errors).
    Status(status::StatusArgs),
    /// Take a consistent backup of a live ledger (or of a data folder): entries, checkpoints
    /// with cosignatures, keys and artifacts.
    Backup(backup::BackupArgs),
    /// Rebuild a data folder from a backup, verified in full before it is used.
    Restore(restore::RestoreArgs),
    /// Copy every entry of a damaged data folder that still verifies into a new one.
    Salvage(restore::SalvageArgs),
    /// Build a year of realistic ISMS activity in a fresh folder and show it.
    Demo(demo::DemoArgs),
}

/// Runs one client command.
pub fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Key(c) => keys::run(c),
        ClientCommand::Backup(a) => backup::run_backup(a),
        ClientCommand::Restore(a) => restore::run_restore(a),
        ClientCommand::Salvage(a) => restore::run_salvage(a),
        ClientCommand::Submit(a) => submit::run(a),
        ClientCommand::Apply(a) => apply::run(a),
        ClientCommand::Risk(c) => manage::run_risk(c),
        ClientCommand::Action(c) => manage::run_action(c),
        ClientCommand::Audit(c) => manage::run_audit(c),
        ClientCommand::Control(c) => manage::run_control(c),
        ClientCommand::Evidence(c) => evidence::run(c),
        ClientCommand::Register(a) => registers::run_register(a),
        ClientCommand::Diff(a) => registers::run_diff(a),
        ClientCommand::Oscal(a) => oscal::run(a),
        ClientCommand::Log(a) => log::run(a),
        ClientCommand::Verify(a) => verify::run_verify(a),
        ClientCommand::Export(a) => verify::run_export(a),
        ClientCommand::Prove(c) => prove::run(c),
        ClientCommand::Receipt(c) => receipt::run(c),
        ClientCommand::Console(c) => console::run(c),
        ClientCommand::Report(a) => report::run(a),
        ClientCommand::Status(a) => status::run(a),
        ClientCommand::Demo(a) => demo::run(a),
    }
}

/// Waits for Ctrl-C or SIGTERM (what `isms serve` and `isms witness serve` stop on).
pub async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
