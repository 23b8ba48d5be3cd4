//! `isms apply FILE...`: the files are the desired state of their registers; the ledger is
//! brought there with only the events that change something, all or nothing.
//!
//! The current state is rebuilt here from every entry the server holds (the same fold the
//! server's admission runs), the plan is computed by `projections::plan`, printed field by
//! field, and — without `--dry-run` — appended as one all-or-nothing group. Each planned event
//! carries its entity's version as its expected version, so a change made by someone else
//! between the plan and the append refuses the whole plan instead of mixing with it; its event
//! id is derived from the entity, that version and the event, so a retried apply is recorded
//! once.

use std::path::PathBuf;

use clap::Args;
use projections::model::Timestamp;
use projections::plan::{plan, Change, Plan};
use projections::wire::{encode_to_vec, BodyHeader};
use projections::State;

use super::log::{entity_of, fetch_all};
use super::submit::{desired_of, submit_all_or_nothing, Pending};
use crate::client::{block_on, Client, ConnectArgs};
use crate::dates::{self, BareDate};
use crate::output::{print_json, Format, FormatArgs, TextTable};

/// `isms apply`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    isms apply --key risk-owner.key --dry-run registers/risks.yaml   # the plan, nothing stored\n  \
    isms apply --key risk-owner.key registers/risks.yaml registers/soa.yaml\n  \
    isms apply --key risk-owner.key --prune registers/risks.yaml    # close risks left out\n\n\
    The files take the shapes `isms submit` reads. Only what differs from the ledger is \
    appended: new rows are created, changed scores reassessed or rescored, changed asset, \
    threat, vulnerability or owner recorded, SoA rows set again, corrective actions moved \
    forward. Applying an unchanged file appends nothing and says \"no changes\". Rows missing \
    from the files are left alone unless --prune closes them (risks; nothing is deleted).\n\n\
    Exit codes: 0 applied or no changes, 2 refused (nothing stored).")]
pub struct ApplyArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The files describing the registers' desired state.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the plan and store nothing.
    #[arg(long)]
    dry_run: bool,
    /// A spreadsheet's rows that are refused are left out (and named) instead of stopping the
    /// plan.
    #[arg(long)]
    skip_bad: bool,
    /// Close the risks the files' risk register no longer lists.
    #[arg(long)]
    prune: bool,
    /// When the changes take effect (a date or RFC 3339); default now. Rows with their own
    /// `date` keep it.
    #[arg(long)]
    effective: Option<String>,
    #[command(flatten)]
    format: FormatArgs,
}

/// The current ISMS state, folded from every entry the server holds.
async fn current_state(client: &mut Client) -> anyhow::Result<State> {
    let (entries, _) = fetch_all(client, "reading the ledger").await?;
    Ok(projections::ledger_glue::state_of(&entries))
}

/// The event id of a planned change: repeatable for the same change from the same version.
fn event_id_of(change: &Change) -> String {
    let header = BodyHeader {
        ledger_id: Vec::new(),
        event_id: String::new(),
        effective_at: Timestamp(0),
        client_time: Timestamp(0),
        expected_version: None,
        artifacts: Vec::new(),
    };
    let hash = blake3::hash(&encode_to_vec(&header, &change.event)).to_hex();
    let entity: String = entity_of(&change.event)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!(
        "apply-{}-{entity}-v{}-{}",
        change.event.kind().name(),
        change.base_version.unwrap_or(0),
        &hash[..12]
    )
}

fn print_plan(plan: &Plan, format: Format) {
    if format == Format::Json {
        let changes: Vec<serde_json::Value> = plan
            .changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "event_id": event_id_of(c),
                    "kind": c.event.kind().name(),
                    "entity": entity_of(&c.event),
                    "expected_version": c.base_version,
                    "roles": c.event.kind().allowed_roles().iter().map(|r| r.name()).collect::<Vec<_>>(),
                    "fields": c.fields.iter().map(|f| serde_json::json!({
                        "field": f.field, "from": f.from, "to": f.to,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let kept: Vec<serde_json::Value> = plan
            .kept
            .iter()
            .map(|k| serde_json::json!({"entity": k.entity, "why": k.why}))
            .collect();
        print_json(&serde_json::json!({ "changes": changes, "kept": kept }));
        return;
    }
    let mut table = TextTable::new(["entity", "event", "change", "roles"]);
    for c in &plan.changes {
        let change = if c.fields.is_empty() {
            "new".to_string()
        } else {
            c.fields
                .iter()
                .map(|f| format!("{}: {} → {}", f.field, f.from, f.to))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let roles = c
            .event
            .kind()
            .allowed_roles()
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(" or ");
        table.push(vec![
            entity_of(&c.event),
            c.event.kind().name().to_string(),
            change,
            roles,
        ]);
    }
    table.print(format);
    for k in &plan.kept {
        println!("left as recorded: {}: {}", k.entity, k.why);
    }
}

/// Runs `isms apply`.
pub fn run(args: ApplyArgs) -> anyhow::Result<()> {
    let effective = match &args.effective {
        Some(t) => dates::parse(t, BareDate::StartOfDay)?,
        None => ledger::UnixMicros::now().0,
    };
    let mut desired = Vec::new();
    for file in &args.files {
        desired.extend(desired_of(file, args.skip_bad)?);
    }
    let state = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        current_state(&mut client).await
    })??;
    let plan = plan(&state, desired, args.prune);
    let format = args.format.format();
    if plan.changes.is_empty() {
        if format == Format::Json {
            print_plan(&plan, format);
        } else {
            for k in &plan.kept {
                println!("left as recorded: {}: {}", k.entity, k.why);
            }
            println!("no changes: the ledger already holds what the files describe");
        }
        return Ok(());
    }
    if args.dry_run {
        print_plan(&plan, format);
        if format != Format::Json {
            println!(
                "{} event(s) would be appended (dry run: nothing stored)",
                plan.changes.len()
            );
        }
        return Ok(());
    }
    if format != Format::Json {
        print_plan(&plan, format);
    }
    let pending = plan
        .changes
        .iter()
        .map(|c| Pending {
            event_id: event_id_of(c),
            effective_at: c.effective.unwrap_or(effective),
            event: c.event.clone(),
            artifacts: Vec::new(),
            expected_version: c.base_version,
        })
        .collect();
    submit_all_or_nothing(&args.connect, format, pending)
}
