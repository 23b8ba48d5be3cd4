//! `isms register NAME` and `isms diff`: the registers the server rebuilds from the ledger, at
//! any recorded time (`--as-of`) or bitemporally (`--effective`), and what changed between two
//! dates.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use isms_proto::v1 as pb;

use crate::client::{block_on, Client, ConnectArgs};
use crate::dates::{self, BareDate};
use crate::output::{print_json, Format, FormatArgs, TextTable};
use crate::server::registers_service::method as rm;

/// The registers `isms register` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RegisterName {
    /// The risk register (inherent and residual scores, treatment, controls).
    Risks,
    /// The Statement of Applicability (all 93 Annex A controls).
    Soa,
    /// Audit findings.
    Findings,
    /// Corrective actions with their SLA due dates and what is overdue.
    Actions,
    /// Evidence per control (counts, latest, 3-month coverage).
    Evidence,
    /// The seed's KPIs.
    Kpis,
    /// The certification readiness checklists (stage 1, stage 2, surveillance).
    Readiness,
    /// Internal audits planned and completed.
    Audits,
    /// Certification body audits and the three-year cycle: what was held, what is due.
    Certification,
    /// The audit programme's coverage: clauses 4-10 and applicable controls audited in the
    /// last 12 months, and which not.
    Coverage,
    /// Information assets, with the risks that name each one.
    Assets,
    /// Security incidents.
    Incidents,
    /// Awareness training records.
    Training,
    /// Supplier assessments.
    Suppliers,
    /// Management reviews, with the mandatory inputs and outputs each missed.
    Reviews,
    /// Each management review decision: open or closed, and reported at the next review.
    ReviewActions,
    /// The ISMS scope, field by field.
    Scope,
    /// Policies and documents under document control.
    Policies,
    /// ISMS objectives with their metrics and targets.
    Objectives,
    /// Business continuity tests.
    ContinuityTests,
    /// Legal, regulatory and contractual requirements, with their latest compliance review.
    Legal,
    /// Access reviews: due, completed (on time or late), accounts reviewed and removed.
    AccessReviews,
    /// Technical vulnerabilities: severity, remediation deadline, remediated or overdue.
    Vulnerabilities,
    /// Patch compliance, the latest measurement of each population of devices.
    PatchCompliance,
}

impl RegisterName {
    /// The server's table name.
    pub fn table(self) -> &'static str {
        match self {
            RegisterName::Risks => "risk_register",
            RegisterName::Soa => "soa",
            RegisterName::Findings => "findings",
            RegisterName::Actions => "corrective_actions",
            RegisterName::Evidence => "evidence",
            RegisterName::Kpis => "kpis",
            RegisterName::Readiness => "readiness",
            RegisterName::Audits => "audits",
            RegisterName::Certification => "certification_cycle",
            RegisterName::Coverage => "audit_coverage",
            RegisterName::Assets => "assets",
            RegisterName::Incidents => "incidents",
            RegisterName::Training => "training",
            RegisterName::Suppliers => "suppliers",
            RegisterName::Reviews => "management_reviews",
            RegisterName::ReviewActions => "review_actions",
            RegisterName::Scope => "scope",
            RegisterName::Policies => "policies",
            RegisterName::Objectives => "objectives",
            RegisterName::ContinuityTests => "continuity_tests",
            RegisterName::Legal => "legal_requirements",
            RegisterName::AccessReviews => "access_reviews",
            RegisterName::Vulnerabilities => "vulnerabilities",
            RegisterName::PatchCompliance => "patch_compliance",
        }
    }
}

/// The name of a register's id column, by the server's table name.
pub fn id_column_of(table: &str) -> &'static str {
    match table {
        "risk_register" => "risk",
        "soa" | "evidence" => "control",
        "findings" => "finding",
        "corrective_actions" => "action",
        "kpis" => "kpi",
        "readiness" => "item",
        "audits" => "audit",
        "audit_coverage" => "item",
        "certification_cycle" => "audit",
        "assets" => "asset",
        "incidents" => "incident",
        "training" => "training",
        "suppliers" => "supplier",
        "management_reviews" => "review",
        "review_actions" => "decision",
        "scope" => "field",
        "policies" => "policy",
        "objectives" => "objective",
        "continuity_tests" => "test",
        "legal_requirements" => "requirement",
        "access_reviews" => "review",
        "vulnerabilities" => "vulnerability",
        "patch_compliance" => "scope",
        _ => "id",
    }
}

/// Which point in time a register query reads.
#[derive(Args, Debug, Clone, Default)]
pub struct PointArgs {
    /// What the register said at this time (transaction time; a date means its end).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Bitemporal: what was in effect at this time, as known at --as-of (default now).
    #[arg(long)]
    pub effective: Option<String>,
}

impl PointArgs {
    /// The AsOf message.
    pub fn as_of(&self) -> anyhow::Result<Option<pb::AsOf>> {
        let known = self
            .as_of
            .as_deref()
            .map(|t| dates::parse(t, BareDate::EndOfDay))
            .transpose()?;
        let point = match (&self.effective, known) {
            (Some(e), known) => Some(pb::as_of::Point::Bitemporal(pb::Bitemporal {
                effective_at_us: dates::parse(e, BareDate::EndOfDay)?,
                // 0 asks for "as known now" by the server's clock, which a client's clock
                // running ahead of it must not turn into a refusal.
                known_at_us: known.unwrap_or(0),
            })),
            (None, Some(t)) => Some(pb::as_of::Point::RecordedAtUs(t)),
            (None, None) => None,
        };
        Ok(point.map(|p| pb::AsOf { point: Some(p) }))
    }

    /// Which time axis an answer shows, in words: "as recorded on T" (transaction time), or
    /// "in effect on E, as known on K" (bitemporal); `shown_us` is the time the server
    /// answered for.
    pub fn axis(&self, shown_us: i64) -> anyhow::Result<String> {
        Ok(match &self.effective {
            None => format!("as recorded on {}", dates::show_time(shown_us)),
            Some(e) => format!(
                "in effect on {}, as known on {}",
                dates::show_time(dates::parse(e, BareDate::EndOfDay)?),
                match &self.as_of {
                    Some(k) => dates::show_time(dates::parse(k, BareDate::EndOfDay)?),
                    None => "today".to_string(),
                }
            ),
        })
    }
}

/// `isms register`.
#[derive(Args, Debug)]
#[command(after_help = "Examples, one per register:\n  \
        isms register risks --key admin.key --as-of 2025-03-31\n  \
        isms register soa --key admin.key --csv > soa.csv\n  \
        isms register findings --key auditor.key --as-of 2025-06-30\n  \
        isms register actions --key auditor.key --effective 2025-06-30 --as-of 2025-12-31 --json\n  \
        isms register evidence --key auditor.key --xlsx evidence.xlsx\n  \
        isms register kpis --key admin.key\n  \
        isms register kpis --key admin.key --by quarter --from 2025-01-01 --as-of 2025-12-31\n  \
        isms register readiness --key auditor.key --as-of 2025-09-30\n  \
        isms register audits --key auditor.key\n  \
        isms register certification --key ceo.key\n  \
        isms register coverage --key auditor.key --as-of 2025-12-31\n  \
        isms register assets --key admin.key --csv\n  \
        isms register incidents --key admin.key --as-of 2025-06-30\n  \
        isms register training --key admin.key --json\n  \
        isms register suppliers --key admin.key\n  \
        isms register reviews --key auditor.key\n  \
        isms register review-actions --key ceo.key\n  \
        isms register scope --key auditor.key --as-of 2025-03-31\n  \
        isms register policies --key auditor.key\n  \
        isms register objectives --key admin.key\n  \
        isms register continuity-tests --key auditor.key\n  \
        isms register legal --key auditor.key --as-of 2025-12-31\n  \
        isms register access-reviews --key auditor.key --as-of 2025-09-30\n  \
        isms register vulnerabilities --key admin.key --csv\n  \
        isms register patch-compliance --key admin.key --as-of 2025-06-30\n\n\
        Only what a quorum of witnesses had cosigned by a date:\n  \
        isms register risks --key auditor.key --as-of 2025-03-31 --witnessed --witness-key w1.vkey")]
pub struct RegisterArgs {
    /// Which register.
    #[arg(value_enum)]
    register: RegisterName,
    #[command(flatten)]
    point: PointArgs,
    /// Answer only from the entries a quorum of the --witness-key witnesses had cosigned by
    /// --as-of, computed here from the verified entries (not by the server).
    #[arg(
        long,
        requires = "as_of",
        requires = "witness_keys",
        conflicts_with = "effective"
    )]
    witnessed: bool,
    /// A witness you trust (verifier key or file; repeatable), for --witnessed.
    #[arg(long = "witness-key", value_name = "VKEY_OR_FILE")]
    witness_keys: Vec<String>,
    /// How many of them must have cosigned (default: all).
    #[arg(long, value_name = "N")]
    witness_quorum: Option<usize>,
    /// Write the register to this Excel workbook (`.xlsx`) instead of printing it: the rows
    /// shown, and a sheet `about` saying which register, time axis and entries they are.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["json", "csv", "witnessed"])]
    xlsx: Option<std::path::PathBuf>,
    /// KPIs only: one column per month or quarter, each the KPIs as recorded at that period's
    /// end, from --from to --as-of (default today), with the target an objective sets for the
    /// KPI and the trend over the last two periods.
    #[arg(long, value_enum, conflicts_with_all = ["witnessed", "effective"])]
    by: Option<Period>,
    /// With --by: the first period (a date in it; default a year before --as-of).
    #[arg(long, requires = "by")]
    from: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    format: FormatArgs,
}

/// The periods of `isms register kpis --by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Period {
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
}

/// The (label, end) of each period from the one holding `from_us` to the one holding
/// `to_us`; the last ends at `to_us`.
pub fn periods(by: Period, from_us: i64, to_us: i64) -> Vec<(String, i64)> {
    let year_month = |us: i64| -> (i64, u32) {
        let day = dates::show(us);
        (
            day[..4].parse().unwrap_or(1970),
            day[5..7].parse().unwrap_or(1),
        )
    };
    let step = match by {
        Period::Month => 1,
        Period::Quarter => 3,
    };
    let (mut year, month) = year_month(from_us);
    // The first month of the period holding `from`.
    let mut month = (month - 1) / step * step + 1;
    let mut out = Vec::new();
    loop {
        let (next_year, next_month) = if month + step > 12 {
            (year + 1, month + step - 12)
        } else {
            (year, month + step)
        };
        let end = projections::Timestamp::from_date(next_year, next_month, 1).0 - 1;
        let label = match by {
            Period::Month => format!("{year}-{month:02}"),
            Period::Quarter => format!("{year}-Q{}", (month - 1) / 3 + 1),
        };
        out.push((label, end.min(to_us)));
        if end >= to_us {
            break;
        }
        (year, month) = (next_year, next_month);
    }
    out
}

/// The number a KPI value starts with ("87.5%" -> 87.5, "3 (1 high)" -> 3).
fn leading_number(value: &str) -> Option<f64> {
    let digits: String = value
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().ok()
}

/// "up", "down" or "flat" from the last two periods that have a number.
fn trend(values: &[String]) -> String {
    let numbers: Vec<f64> = values.iter().filter_map(|v| leading_number(v)).collect();
    match numbers[..] {
        [.., a, b] if b > a => "up".into(),
        [.., a, b] if b < a => "down".into(),
        [.., _, _] => "flat".into(),
        _ => String::new(),
    }
}

/// `isms register kpis --by month|quarter`.
fn run_kpi_trend(args: &RegisterArgs, by: Period) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.register == RegisterName::Kpis,
        "--by gives the KPIs per period; it does not apply to {}",
        args.register.table()
    );
    let to_us = match &args.point.as_of {
        Some(t) => dates::parse(t, BareDate::EndOfDay)?,
        None => ledger::UnixMicros::now().0,
    };
    let from_us = match &args.from {
        Some(t) => dates::parse(t, BareDate::StartOfDay).context("--from")?,
        None => to_us - 365 * 86_400_000_000,
    };
    anyhow::ensure!(from_us <= to_us, "--from is after --as-of");
    let periods = periods(by, from_us, to_us);
    let (columns, objectives) = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let mut columns: Vec<Vec<(String, String)>> = Vec::new();
        for (_, end) in &periods {
            let point = Some(pb::AsOf {
                point: Some(pb::as_of::Point::RecordedAtUs(*end)),
            });
            // A period before the ledger began has no values.
            let values = match fetch(&mut client, RegisterName::Kpis, point).await {
                Ok(f) => f
                    .table
                    .rows
                    .into_iter()
                    .map(|r| (r[0].clone(), r[1].clone()))
                    .collect(),
                Err(e)
                    if e.downcast_ref::<tonic::Status>()
                        .is_some_and(|s| s.code() == tonic::Code::OutOfRange) =>
                {
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            columns.push(values);
        }
        let point = Some(pb::AsOf {
            point: Some(pb::as_of::Point::RecordedAtUs(to_us)),
        });
        let objectives = fetch(&mut client, RegisterName::Objectives, point)
            .await?
            .table;
        anyhow::Ok((columns, objectives))
    })??;
    let metric = objectives.columns.iter().position(|c| c == "metric");
    let target = objectives.columns.iter().position(|c| c == "target");
    let target_of = |kpi: &str| -> String {
        let kpi = kpi.to_lowercase();
        objectives
            .rows
            .iter()
            .find(|row| {
                metric.is_some_and(|m| {
                    let metric = row[m].to_lowercase();
                    !metric.is_empty() && (kpi.contains(&metric) || metric.contains(&kpi))
                })
            })
            .and_then(|row| target.map(|t| format!("{} ({})", row[t], row[0])))
            .unwrap_or_default()
    };
    let names: Vec<String> = columns
        .iter()
        .flat_map(|c| c.iter().map(|(name, _)| name.clone()))
        .fold(Vec::new(), |mut all, n| {
            if !all.contains(&n) {
                all.push(n);
            }
            all
        });
    let mut header = vec!["kpi".to_string()];
    header.extend(periods.iter().map(|(label, _)| label.clone()));
    header.extend(["target".to_string(), "trend".to_string()]);
    let mut table = TextTable::new(header);
    for name in names {
        let values: Vec<String> = columns
            .iter()
            .map(|c| {
                c.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        let mut row = vec![name.clone()];
        row.extend(values.iter().cloned());
        row.push(target_of(&name));
        row.push(trend(&values));
        table.push(row);
    }
    match args.format.format() {
        Format::Json => print_json(&serde_json::json!({
            "register": "kpis",
            "by": format!("{by:?}").to_lowercase(),
            "periods": periods.iter().map(|(label, end)| serde_json::json!({
                "period": label,
                "as_of": dates::show_time(*end),
            })).collect::<Vec<_>>(),
            "rows": table.to_json(),
        })),
        format => table.print(format),
    }
    Ok(())
}

/// A register as fetched: the table, the entries folded and the time due dates are judged at.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Rows as text.
    pub table: TextTable,
    /// Entries folded into it (0 for readiness, which does not say).
    pub entries: u64,
    /// The query time.
    pub now_us: i64,
}

/// Turns a server table into a text table: `id` first, then every cell name in order.
pub fn text_table(id_name: &str, table: &pb::Table) -> TextTable {
    let mut columns: Vec<String> = vec![id_name.to_string()];
    for row in &table.rows {
        for cell in &row.cells {
            if !columns.contains(&cell.name) {
                columns.push(cell.name.clone());
            }
        }
    }
    let mut out = TextTable::new(columns.clone());
    for row in &table.rows {
        let mut cells = vec![row.id.clone()];
        for c in &columns[1..] {
            cells.push(
                row.cells
                    .iter()
                    .find(|x| &x.name == c)
                    .map(|x| x.value.clone())
                    .unwrap_or_default(),
            );
        }
        out.push(cells);
    }
    out
}

/// Fetches one register.
pub async fn fetch(
    client: &mut Client,
    register: RegisterName,
    as_of: Option<pb::AsOf>,
) -> anyhow::Result<Fetched> {
    if register == RegisterName::Readiness {
        let request = client.read(pb::ReadinessRequest { as_of }, rm::READINESS);
        let items = client
            .registers()
            .readiness(request)
            .await?
            .into_inner()
            .items;
        let mut table = TextTable::new(["stage", "item", "status", "reason", "entries"]);
        for i in items {
            table.push(vec![
                i.stage,
                i.item,
                i.status,
                i.reason,
                i.entries
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
        return Ok(Fetched {
            table,
            entries: 0,
            now_us: 0,
        });
    }
    let request = client.read(
        pb::GetRegistersRequest {
            as_of,
            registers: vec![register.table().to_string()],
        },
        rm::GET_REGISTERS,
    );
    let response = client
        .registers()
        .get_registers(request)
        .await?
        .into_inner();
    let table = response
        .tables
        .iter()
        .find(|t| t.name == register.table())
        .map(|t| text_table(id_column(register), t))
        .unwrap_or_else(|| TextTable::new([id_column(register)]));
    Ok(Fetched {
        table,
        entries: response.entries,
        now_us: response.now_us,
    })
}

fn id_column(register: RegisterName) -> &'static str {
    id_column_of(register.table())
}

/// `isms register --witnessed`: the register as of a date, computed here from the part of the
/// verified history that a quorum of trusted witnesses had cosigned by that date.
fn run_witnessed(args: &RegisterArgs) -> anyhow::Result<()> {
    use crate::witness_policy::{self, WitnessPolicy};
    anyhow::ensure!(
        args.register != RegisterName::Readiness,
        "--witnessed answers the registers (risks, soa, findings, actions, evidence, kpis), \
         not the readiness checklist"
    );
    let policy = WitnessPolicy::from_flags(&args.witness_keys, args.witness_quorum)?
        .context("--witnessed needs --witness-key")?;
    let as_of_us = dates::parse(
        args.point
            .as_of
            .as_deref()
            .context("--witnessed needs --as-of")?,
        BareDate::EndOfDay,
    )?;
    let (entries, notes) = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let (_, ledger_key) = super::keys::ledger_key_of(&mut client).await?;
        let (entries, head) = super::log::fetch_all(&mut client, "reading").await?;
        let notes: Vec<String> = client
            .checkpoints(head.size)
            .await?
            .into_iter()
            .map(|c| c.note)
            .collect();
        let raw: Vec<Vec<u8>> = entries.iter().map(ledger::Entry::encode).collect();
        crate::bundle::verify_chain(
            &raw,
            &notes,
            &crate::bundle::Trust::key(ledger_key),
            &|_| {},
        )
        .map_err(|e| anyhow::anyhow!("the ledger did not verify: {e}"))?;
        anyhow::Ok((entries, notes))
    })??;
    let ranges = witness_policy::coverage(&policy, &notes)
        .map_err(|why| super::VerificationFailed(format!("witness policy: {why}")))?;
    let by_then: Vec<&witness_policy::Coverage> = ranges
        .iter()
        .filter(|c| c.no_later_than_us() <= as_of_us)
        .collect();
    let Some(last) = by_then.iter().max_by_key(|c| c.last) else {
        anyhow::bail!(
            "no part of this ledger had been cosigned by {} of the given witness(es) by {}: \
             nothing can be answered as witnessed then",
            policy.quorum,
            dates::show_time(as_of_us)
        );
    };
    let size = last.last + 1;
    let state = projections::ledger_glue::state_of(&entries[..size as usize]);
    let tables = projections::registers::Registers {
        state: &state,
        now: projections::model::Timestamp(as_of_us),
    }
    .tables();
    let (name, rows) = tables
        .into_iter()
        .find(|(name, _)| *name == args.register.table())
        .context("the register")?;
    let table = text_table(
        id_column(args.register),
        &crate::server::registers_service::table(name, rows),
    );
    let covers = format!(
        "entries 0..={} (witnessed by {} no later than {}); later entries are left out",
        size - 1,
        last.witnesses.join(", "),
        dates::show_time(last.no_later_than_us())
    );
    match args.format.format() {
        Format::Json => print_json(&serde_json::json!({
            "register": name,
            "entries": size,
            "as_of": dates::show_time(as_of_us),
            "time_axis": "recorded",
            "witnessed": covers,
            "rows": table.to_json(),
        })),
        format => {
            if format == Format::Table {
                println!(
                    "{name} as witnessed by {}: from {covers}\n",
                    dates::show_time(as_of_us)
                );
            }
            table.print(format);
        }
    }
    Ok(())
}

/// Runs `isms register`.
pub fn run_register(args: RegisterArgs) -> anyhow::Result<()> {
    if args.witnessed {
        return run_witnessed(&args);
    }
    if let Some(by) = args.by {
        return run_kpi_trend(&args, by);
    }
    let as_of = args.point.as_of()?;
    let fetched = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        fetch(&mut client, args.register, as_of).await
    })??;
    if let Some(path) = &args.xlsx {
        let shows = args.point.axis(fetched.now_us)?;
        fetched.table.write_xlsx(
            path,
            args.register.table(),
            &[
                ("register", args.register.table().to_string()),
                ("shows", shows),
                ("entries", fetched.entries.to_string()),
            ],
        )?;
        println!(
            "{} ({} rows) written to {}",
            args.register.table(),
            fetched.table.rows.len(),
            path.display()
        );
        return Ok(());
    }
    match args.format.format() {
        Format::Json => print_json(&serde_json::json!({
            "register": args.register.table(),
            "entries": fetched.entries,
            "as_of": (fetched.now_us != 0).then(|| dates::show_time(fetched.now_us)),
            "time_axis": if args.point.effective.is_some() { "effective" } else { "recorded" },
            "shows": args.point.axis(fetched.now_us)?,
            "rows": fetched.table.to_json(),
        })),
        format => {
            if format == Format::Table && fetched.now_us != 0 {
                println!(
                    "{} {} ({} entries)\n",
                    args.register.table(),
                    args.point.axis(fetched.now_us)?,
                    fetched.entries
                );
            }
            fetched.table.print(format);
        }
    }
    Ok(())
}

/// `isms diff`.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  isms diff --key admin.key --from 2025-03-31 --to 2025-06-30")]
pub struct DiffArgs {
    /// The earlier time (a date means its end).
    #[arg(long)]
    from: String,
    /// The later time (a date means its end; default now). A date after today is refused.
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    format: FormatArgs,
}

/// Runs `isms diff`.
pub fn run_diff(args: DiffArgs) -> anyhow::Result<()> {
    let from_us = dates::parse(&args.from, BareDate::EndOfDay)?;
    let to_us = match &args.to {
        Some(to) => dates::parse(to, BareDate::EndOfDay)?,
        None => ledger::UnixMicros::now().0,
    };
    anyhow::ensure!(
        from_us <= to_us,
        "--from {} is after --to {}: give the earlier date first",
        dates::show_time(from_us),
        dates::show_time(to_us)
    );
    let response = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let request = client.read(pb::DiffRequest { from_us, to_us }, rm::DIFF);
        anyhow::Ok(client.registers().diff(request).await?.into_inner())
    })??;
    let mut table = TextTable::new(["register", "id", "change", "field", "before", "after"]);
    let cells = |row: &pb::Row| {
        row.cells
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    };
    for d in &response.registers {
        for r in &d.added {
            table.push(vec![
                d.register.clone(),
                r.id.clone(),
                "added".into(),
                String::new(),
                String::new(),
                cells(r),
            ]);
        }
        for r in &d.removed {
            table.push(vec![
                d.register.clone(),
                r.id.clone(),
                "removed".into(),
                String::new(),
                cells(r),
                String::new(),
            ]);
        }
        for c in &d.changed {
            for x in &c.cells {
                table.push(vec![
                    d.register.clone(),
                    c.id.clone(),
                    "changed".into(),
                    x.name.clone(),
                    x.before.clone(),
                    x.after.clone(),
                ]);
            }
        }
    }
    if args.format.format() == Format::Table {
        println!(
            "changes from {} to {}\n",
            dates::show_time(from_us),
            dates::show_time(to_us)
        );
    }
    table.print(args.format.format());
    Ok(())
}
