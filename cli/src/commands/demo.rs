//! `isms demo`: the README's first command. In a fresh folder it creates a ledger, starts the
//! server in-process on an ephemeral port, enrols six keys (admin/CISO, management, risk
//! owner, control owner, auditor, scanner agent) and submits a year (2025) of realistic ISMS
//! activity over gRPC — the seed guide's examples plus rescorings, weekly evidence, an
//! internal audit with findings, corrective actions closed and verified, an incident, a
//! continuity test and management reviews. It then prints the risk register as of the end of
//! March beside today's, the verification result, and writes a report and an export bundle.
//!
//! Time: the ledger is built with a controllable clock (`LedgerConfig::clock`), set to each
//! event's business date before it is appended. `recorded_at` therefore runs through 2025 and
//! "the register as of 31 March" is a plain transaction-time query, as an auditor would ask
//! it; `effective_at` carries the same dates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ed25519_dalek::SigningKey;
use ledger::{Clock, KeyGrant, Ledger, LedgerConfig, UnixMicros};
use projections::model::*;
use projections::{seed, ControlId};

use super::keys::{new_key_file, write_secret};
use super::registers::{fetch, RegisterName};
use super::submit::{append_events, Pending};
use super::verify::{build_bundle, verified_text, verify_server};
use crate::bundle::ledger_vkey;
use crate::client::{block_on, Client};
use crate::dates;
use crate::output::TextTable;
use crate::server::{self, ServeOptions, LEDGER_KEY_FILE, STORE_DIR};

/// `isms demo`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  cargo run --release -p isms-cli -- demo\n  isms demo --dir \
                        /tmp/isms-demo --force\n  isms demo --console 127.0.0.1:8080   # then open \
                        the printed link\n\nAfterwards:\n  isms serve --data \
                        isms-demo/data &\n  isms register risks --key isms-demo/keys/ciso.key \
                        --as-of 2025-03-31"
)]
pub struct DemoArgs {
    /// The folder to create (an earlier demo's folder is replaced; any other non-empty folder
    /// is refused unless --force).
    #[arg(long, default_value = "./isms-demo")]
    dir: PathBuf,
    /// Reuse a non-empty folder: its `data`, `keys` and outputs are replaced.
    #[arg(long)]
    force: bool,
    /// Afterwards, keep serving the demo's ledger with the auditor's console at this address
    /// (e.g. 127.0.0.1:8080), print a sign-in link for the auditor's key, and run until
    /// Ctrl-C.
    #[arg(long, value_name = "ADDR")]
    console: Option<SocketAddr>,
}

/// A clock the demo moves forward through the year.
#[derive(Debug, Default)]
pub struct DemoClock(AtomicI64);

impl DemoClock {
    /// Sets the time; never moves backwards (recorded_at must not decrease).
    pub fn set(&self, us: i64) {
        self.0.fetch_max(us, Ordering::SeqCst);
    }
}

impl Clock for DemoClock {
    fn now(&self) -> UnixMicros {
        UnixMicros(self.0.load(Ordering::SeqCst))
    }
}

/// Who acts in the demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Actor {
    Ciso,
    Ceo,
    Cto,
    Infra,
    Auditor,
    Scanner,
}

impl Actor {
    const ENROLLED: [(Actor, &'static str, &'static str, &'static [&'static str]); 5] = [
        (Actor::Ceo, "ceo", "ceo@example.com", &["management"]),
        (Actor::Cto, "cto", "cto@example.com", &["risk_owner"]),
        (
            Actor::Infra,
            "infra",
            "head-of-infra@example.com",
            &["control_owner"],
        ),
        (
            Actor::Auditor,
            "auditor",
            "internal-auditor@example.com",
            &["auditor"],
        ),
        (Actor::Scanner, "scanner", "ci/vuln-scanner", &["agent"]),
    ];
}

fn at(date: &str, hour: i64) -> i64 {
    Timestamp::parse_date(date).expect("a valid demo date").0 + hour * 3_600_000_000
}

fn c(id: &str) -> ControlId {
    ControlId::parse(id).expect("a valid demo control")
}

fn ids(list: &[&str]) -> Vec<ControlId> {
    list.iter().map(|x| c(x)).collect()
}

/// One step of the story: when, who, what, and the artifact it carries.
struct Step {
    at: i64,
    actor: Actor,
    event: Event,
    artifact: Option<(String, Vec<u8>)>,
}

fn step(at: i64, actor: Actor, event: Event) -> Step {
    Step {
        at,
        actor,
        event,
        artifact: None,
    }
}

fn score<T>(f: fn(&str, u32) -> Result<T, projections::Error>, v: u32) -> T {
    f("demo", v).expect("a valid demo score")
}

const RISK_YAML: &str = include_str!("../../../fixtures/seed/risk_assessment.yaml");
const SOA_YAML: &str = include_str!("../../../fixtures/seed/soa_template.yaml");
const AUDIT_YAML: &str = include_str!("../../../fixtures/seed/internal_audit.yaml");

/// The year of activity, in time order.
fn story() -> anyhow::Result<Vec<Step>> {
    use Actor::*;
    let mut s = Vec::new();
    s.push(step(
        at("2025-01-08", 10),
        Ciso,
        Event::ScopeDefined(Scope {
            organization: "Example Ltd".into(),
            scope_statement: "The design, development and operation of the Example SaaS \
                              platform and its supporting business processes"
                .into(),
            locations: vec!["London office".into(), "AWS eu-west-1".into()],
            business_processes: vec!["Software development".into(), "Customer support".into()],
            information_assets: vec!["Customer database".into(), "Source code".into()],
            technology: vec!["AWS".into(), "Okta".into(), "GitHub".into()],
            excluded: vec!["Physical data centres (AWS)".into()],
            exclusion_justification: "Inherited from AWS (SOC 2, ISO 27001)".into(),
            interfaces: vec!["Payroll SaaS".into()],
        }),
    ));
    for (id, title, kind) in [
        (
            "POL-ISP",
            "Information security policy",
            PolicyKind::InformationSecurity,
        ),
        (
            "POL-RISK",
            "Risk assessment methodology",
            PolicyKind::RiskMethodology,
        ),
        (
            "POL-DOC",
            "Control of documented information",
            PolicyKind::DocumentControl,
        ),
        (
            "POL-INC",
            "Incident management procedure",
            PolicyKind::IncidentManagement,
        ),
    ] {
        s.push(step(
            at("2025-01-09", 11),
            Ceo,
            Event::PolicyApproved {
                policy_id: PolicyId(id.into()),
                title: title.into(),
                kind,
                version: "1.0".into(),
                published: true,
                next_review: Some(Timestamp(at("2026-01-09", 11))),
            },
        ));
    }
    s.push(step(
        at("2025-01-09", 12),
        Ceo,
        Event::ObjectiveSet {
            objective_id: ObjectiveId("OBJ-1".into()),
            description: "Keep phishing simulation click rate low".into(),
            metric: "phishing simulation click rate".into(),
            target: "< 5%".into(),
        },
    ));
    s.push(step(
        at("2025-01-09", 12),
        Ceo,
        Event::ObjectiveSet {
            objective_id: ObjectiveId("OBJ-2".into()),
            description: "Patch known vulnerabilities on time".into(),
            metric: "Patch compliance percentage".into(),
            target: ">= 95%".into(),
        },
    ));
    // The information assets the risk assessment starts from (the guide's asset-based
    // approach); the office Wi-Fi has no risk assessed yet, and the asset register says so.
    for (id, name, kind, owner, classification) in [
        ("AS-001", "Customer database", "data", "CTO", "confidential"),
        (
            "AS-002",
            "Source code repository",
            "software",
            "VP Engineering",
            "confidential",
        ),
        (
            "AS-003",
            "Cloud infrastructure",
            "service",
            "Head of Infrastructure",
            "internal",
        ),
        (
            "AS-004",
            "Employee accounts",
            "identity",
            "CTO",
            "confidential",
        ),
        ("AS-005", "Laptops", "hardware", "CTO", "internal"),
        ("AS-006", "Payroll data", "data", "CFO", "restricted"),
        (
            "AS-007",
            "Office Wi-Fi",
            "network",
            "Head of Infrastructure",
            "internal",
        ),
    ] {
        let registered = |retired: bool| Event::AssetRegistered {
            asset_id: AssetId(id.into()),
            name: name.into(),
            asset_type: kind.into(),
            owner: owner.into(),
            classification: classification.into(),
            location: match kind {
                "hardware" | "network" => "London office",
                _ => "AWS eu-west-1",
            }
            .into(),
            retired,
        };
        s.push(step(at("2025-01-10", 10), Ciso, registered(false)));
        // The office Wi-Fi is replaced by the new office's network in November.
        if id == "AS-007" {
            s.push(step(at("2025-11-03", 10), Ciso, registered(true)));
        }
    }
    // The certification body's stage 1 and stage 2 audits: certified, with two minors.
    for (id, kind, start, end, minors, certified, summary) in [
        (
            "CB-2025-S1",
            ExternalAuditKind::Stage1,
            "2025-10-20",
            "2025-10-21",
            0,
            false,
            "Documentation ready for stage 2",
        ),
        (
            "CB-2025-S2",
            ExternalAuditKind::Stage2,
            "2025-11-17",
            "2025-11-19",
            2,
            true,
            "Recommended for certification; two minor nonconformities",
        ),
    ] {
        s.push(step(
            at(end, 17),
            Ceo,
            Event::ExternalAuditHeld {
                audit_id: AuditId(id.into()),
                kind,
                body: "Example Certification Body".into(),
                start: Timestamp::parse_date(start).expect("date"),
                end: Timestamp(at(end, 17)),
                major_nonconformities: 0,
                minor_nonconformities: minors,
                certified,
                summary: summary.into(),
            },
        ));
    }
    // The objectives measured each quarter, by management.
    for (date, click_rate, patched) in [
        ("2025-03-31", "6.1%", "92%"),
        ("2025-06-30", "4.8%", "96%"),
        ("2025-09-30", "3.9%", "97%"),
        ("2025-12-12", "3.5%", "98%"),
    ] {
        for (objective, value) in [("OBJ-1", click_rate), ("OBJ-2", patched)] {
            s.push(step(
                at(date, 17),
                Ceo,
                Event::ObjectiveMeasured {
                    objective_id: ObjectiveId(objective.into()),
                    value: value.into(),
                    note: format!("quarterly measurement, {date}"),
                },
            ));
        }
    }
    // The seed's risk register, as written, by the risk owner.
    for event in seed::risk_register_events(RISK_YAML)? {
        s.push(step(at("2025-01-15", 14), Cto, event));
    }
    let risk = |id: &str| RiskId(id.into());
    let identify =
        |s: &mut Vec<Step>, when: i64, id: &str, asset: &str, threat: &str, vuln: &str| {
            s.push(step(
                when,
                Cto,
                Event::RiskIdentified {
                    risk_id: risk(id),
                    asset: asset.into(),
                    threat: threat.into(),
                    vulnerability: vuln.into(),
                    risk_owner: "CTO".into(),
                },
            ));
        };
    let assess = |s: &mut Vec<Step>, when: i64, id: &str, l: u32, i: u32| {
        s.push(step(
            when,
            Cto,
            Event::RiskAssessed {
                risk_id: risk(id),
                likelihood: score(Likelihood::parse, l),
                impact: score(Impact::parse, i),
            },
        ));
    };
    let rescore = |s: &mut Vec<Step>, when: i64, id: &str, l: u32, i: u32, why: &str| {
        s.push(step(
            when,
            Cto,
            Event::RiskRescored {
                risk_id: risk(id),
                likelihood: score(Likelihood::parse, l),
                impact: score(Impact::parse, i),
                reason: why.into(),
            },
        ));
    };
    let treat =
        |s: &mut Vec<Step>, when: i64, id: &str, t: Treatment, controls: &[&str], plan: &str| {
            s.push(step(
                when,
                Cto,
                Event::RiskTreatmentDecided {
                    risk_id: risk(id),
                    treatment: t,
                    controls: ids(controls),
                    plan: plan.into(),
                },
            ));
        };
    let d = at("2025-01-16", 10);
    identify(
        &mut s,
        d,
        "RISK-004",
        "Employee accounts",
        "Phishing and credential theft",
        "Password-only access to some tools",
    );
    assess(&mut s, d, "RISK-004", 4, 4);
    treat(
        &mut s,
        d,
        "RISK-004",
        Treatment::Mitigate,
        &["A.6.3", "A.8.5"],
        "MFA everywhere, quarterly phishing drills",
    );
    identify(
        &mut s,
        d,
        "RISK-005",
        "Laptops",
        "Loss or theft of a laptop",
        "Unencrypted disks on older devices",
    );
    assess(&mut s, d, "RISK-005", 3, 3);
    treat(
        &mut s,
        d,
        "RISK-005",
        Treatment::Mitigate,
        &["A.8.1"],
        "MDM and full-disk encryption",
    );

    // The seed's SoA, as written, by the control owner; approved by management.
    for event in seed::soa_events(SOA_YAML)? {
        s.push(step(at("2025-01-20", 10), Infra, event));
    }
    for (control, status, day) in [
        ("A.5.15", ImplementationStatus::Implemented, "2025-01-22"),
        ("A.8.8", ImplementationStatus::Implemented, "2025-01-22"),
        ("A.8.5", ImplementationStatus::InProgress, "2025-01-22"),
        ("A.8.1", ImplementationStatus::InProgress, "2025-01-22"),
        ("A.8.15", ImplementationStatus::Implemented, "2025-01-22"),
        ("A.5.30", ImplementationStatus::Planned, "2025-01-22"),
        ("A.8.5", ImplementationStatus::Implemented, "2025-02-20"),
        ("A.8.1", ImplementationStatus::Implemented, "2025-03-05"),
        ("A.5.30", ImplementationStatus::Implemented, "2025-09-19"),
    ] {
        s.push(step(
            at(day, 15),
            Infra,
            Event::ImplementationStatusChanged {
                control_id: c(control),
                status,
                note: String::new(),
            },
        ));
    }
    s.push(step(
        at("2025-01-27", 9),
        Ceo,
        Event::ControlApproved {
            control_ids: Vec::new(),
            soa_version: "1.0".into(),
        },
    ));
    rescore(
        &mut s,
        at("2025-02-21", 9),
        "RISK-004",
        2,
        4,
        "MFA enforced for all systems",
    );
    rescore(
        &mut s,
        at("2025-03-06", 9),
        "RISK-005",
        1,
        3,
        "All laptops enrolled in MDM with disk encryption",
    );
    for (n, who) in ["alice", "bob", "carol", "dave"].iter().enumerate() {
        s.push(step(
            at("2025-02-03", 9 + n as i64),
            Infra,
            Event::TrainingRecorded {
                training_id: TrainingId(format!("TR-2025-{:02}", n + 1)),
                person: format!("{who}@example.com"),
                course: "Security awareness 2025".into(),
                completed: true,
                campaign: "Security awareness 2025".into(),
                due: Some(Timestamp(at("2025-02-28", 18))),
            },
        ));
    }

    // Evidence: weekly vulnerability scans, monthly log reviews, quarterly access reviews.
    let mut day = Timestamp::parse_date("2025-01-13").expect("date");
    let mut n = 0;
    while day < Timestamp::parse_date("2025-12-20").expect("date") {
        n += 1;
        let when = day.0 + 6 * 3_600_000_000;
        let critical = if n == 9 { 2 } else { 0 };
        let report = format!(
            "{{\"scanner\":\"vuln-scanner\",\"scan\":{n},\"date\":\"{day}\",\"hosts\":42,\"critical\":{critical}}}\n"
        );
        s.push(Step {
            at: when,
            actor: Scanner,
            event: Event::EvidenceSubmitted {
                evidence_id: EvidenceId(format!("EV-SCAN-{n:03}")),
                controls: ids(&["A.8.8"]),
                artifact_blake3: Some(*blake3::hash(report.as_bytes()).as_bytes()),
                result: if critical > 0 {
                    CheckResult::Fail
                } else {
                    CheckResult::Pass
                },
                collected_at: Timestamp(when),
                summary: format!("Weekly vulnerability scan {n}: {critical} critical"),
            },
            artifact: Some((format!("scan-{day}.json"), report.into_bytes())),
        });
        if n % 4 == 1 {
            s.push(step(
                when + 3_600_000_000,
                Infra,
                Event::EvidenceSubmitted {
                    evidence_id: EvidenceId(format!("EV-LOG-{:02}", n / 4 + 1)),
                    controls: ids(&["A.8.15", "A.8.16"]),
                    artifact_blake3: None,
                    result: CheckResult::Pass,
                    collected_at: Timestamp(when),
                    summary: "Monthly SIEM log review".into(),
                },
            ));
        }
        if n % 13 == 2 {
            s.push(step(
                when + 2 * 3_600_000_000,
                Infra,
                Event::EvidenceSubmitted {
                    evidence_id: EvidenceId(format!("EV-ACCESS-{:02}", n / 13 + 1)),
                    controls: ids(&["A.5.15", "A.8.3"]),
                    artifact_blake3: None,
                    result: CheckResult::Pass,
                    collected_at: Timestamp(when),
                    summary: "Quarterly access review".into(),
                },
            ));
        }
        day = day.plus_days(7);
    }

    // The Q1 internal audit: the seed's plan, four findings, three corrective actions.
    s.push(step(
        at("2025-03-03", 9),
        Auditor,
        seed::audit_plan_event(AUDIT_YAML)?,
    ));
    let finding = |id: &str, grade, area: &str, desc: &str, controls: &[&str], auditee: &str| {
        Event::FindingRaised {
            finding_id: FindingId(id.into()),
            audit_id: AuditId("IA-2025-Q1".into()),
            grade,
            area: area.into(),
            description: desc.into(),
            controls: ids(controls),
            auditee: auditee.into(),
        }
    };
    let f = at("2025-03-14", 16);
    s.push(step(
        f,
        Auditor,
        finding(
            "F-2025-01",
            FindingGrade::MinorNonconformity,
            "Access Control (A.5.15)",
            "Q4 access review not evidenced for 2 of 12 systems",
            &["A.5.15"],
            "IT Security Team",
        ),
    ));
    s.push(step(
        f,
        Auditor,
        finding(
            "F-2025-02",
            FindingGrade::MajorNonconformity,
            "Risk Management (Clause 6.1)",
            "Risk treatment plan not reviewed by management since approval",
            &[],
            "Risk Management Team",
        ),
    ));
    s.push(step(
        f,
        Auditor,
        finding(
            "F-2025-03",
            FindingGrade::Observation,
            "Access Control (A.5.15)",
            "Privileged access logs kept 90 days only",
            &["A.8.15"],
            "IT Security Team",
        ),
    ));
    s.push(step(
        f,
        Auditor,
        finding(
            "F-2025-04",
            FindingGrade::PositiveFinding,
            "Access Control (A.5.15)",
            "Leaver access revoked within hours, automated",
            &["A.5.15"],
            "IT Security Team",
        ),
    ));
    s.push(step(
        f + 3_600_000_000,
        Auditor,
        Event::AuditCompleted {
            audit_id: AuditId("IA-2025-Q1".into()),
            summary: "1 major, 1 minor, 1 observation, 1 positive".into(),
        },
    ));
    let open = |id: &str, finding: &str, desc: &str, owner: &str| Event::CorrectiveActionOpened {
        action_id: ActionId(id.into()),
        finding_id: FindingId(finding.into()),
        description: desc.into(),
        owner: owner.into(),
    };
    let o = at("2025-03-17", 10);
    s.push(step(
        o,
        Auditor,
        open(
            "CA-2025-01",
            "F-2025-01",
            "Complete and evidence the missing access reviews",
            "IT Security Team",
        ),
    ));
    s.push(step(
        o,
        Auditor,
        open(
            "CA-2025-02",
            "F-2025-02",
            "Quarterly management review of the risk treatment plan",
            "CISO",
        ),
    ));
    s.push(step(
        o,
        Auditor,
        open(
            "CA-2025-03",
            "F-2025-03",
            "Extend privileged access log retention to 12 months",
            "IT Security Team",
        ),
    ));
    let action = |id: &str| ActionId(id.into());
    s.push(step(
        at("2025-03-21", 11),
        Infra,
        Event::RootCauseRecorded {
            action_id: action("CA-2025-02"),
            root_cause: "No calendar owner for the quarterly risk review".into(),
        },
    ));
    s.push(step(
        at("2025-04-10", 11),
        Infra,
        Event::CorrectiveActionClosed {
            action_id: action("CA-2025-02"),
            resolution:
                "Quarterly risk review added to the management calendar; first held 2025-04-08"
                    .into(),
        },
    ));
    s.push(step(
        at("2025-04-14", 10),
        Auditor,
        Event::CorrectiveActionVerified {
            action_id: action("CA-2025-02"),
            effective: true,
            note: "Minutes of 2025-04-08 reviewed".into(),
        },
    ));
    s.push(step(
        at("2025-05-05", 11),
        Infra,
        Event::CorrectiveActionClosed {
            action_id: action("CA-2025-01"),
            resolution: "Reviews completed for all 12 systems; evidence filed".into(),
        },
    ));
    s.push(step(
        at("2025-05-09", 10),
        Auditor,
        Event::CorrectiveActionVerified {
            action_id: action("CA-2025-01"),
            effective: true,
            note: "Sampled 4 systems".into(),
        },
    ));
    s.push(step(
        at("2025-06-30", 11),
        Infra,
        Event::CorrectiveActionClosed {
            action_id: action("CA-2025-03"),
            resolution: "Retention set to 12 months in the SIEM".into(),
        },
    ));
    s.push(step(
        at("2025-07-03", 10),
        Auditor,
        Event::CorrectiveActionVerified {
            action_id: action("CA-2025-03"),
            effective: true,
            note: "Retention policy checked".into(),
        },
    ));

    rescore(
        &mut s,
        at("2025-04-22", 9),
        "RISK-002",
        1,
        4,
        "Repository access narrowed after the access review",
    );
    s.push(step(
        at("2025-06-12", 14),
        Ceo,
        Event::ManagementReviewHeld {
            review_id: ReviewId("MR-2025-1".into()),
            attendees: vec![
                "CEO".into(),
                "CISO".into(),
                "CTO".into(),
                "Head of Infrastructure".into(),
            ],
            inputs_covered: ReviewInput::ALL.iter().map(|(i, _)| *i).collect(),
            references: review_pack("MR-2025-1"),
            decisions: vec![
                (
                    ReviewOutput::Improvement,
                    "Automate evidence collection for A.8.9".into(),
                ),
                (
                    ReviewOutput::IsmsChanges,
                    "Add the payroll supplier to scope interfaces".into(),
                ),
                (
                    ReviewOutput::Resources,
                    "Fund a second-region deployment".into(),
                ),
                (
                    ReviewOutput::RiskAcceptance,
                    "Residual risks within appetite accepted".into(),
                ),
            ],
        },
    ));
    rescore(
        &mut s,
        at("2025-06-20", 9),
        "RISK-004",
        2,
        3,
        "Phishing drills cut click rate to 3%",
    );

    // A supplier risk, transferred and accepted above the appetite by management.
    let d = at("2025-07-10", 10);
    identify(
        &mut s,
        d,
        "RISK-006",
        "Payroll data",
        "Breach at the payroll SaaS supplier",
        "Supplier holds employee personal data",
    );
    assess(&mut s, d, "RISK-006", 2, 4);
    treat(
        &mut s,
        d,
        "RISK-006",
        Treatment::Transfer,
        &["A.5.19", "A.5.20"],
        "Contractual clauses and cyber insurance",
    );
    rescore(
        &mut s,
        at("2025-07-21", 10),
        "RISK-006",
        2,
        3,
        "Insurance in place; DPA signed",
    );
    s.push(step(
        at("2025-07-22", 10),
        Infra,
        Event::SupplierAssessed {
            supplier_id: SupplierId("SUP-PAYROLL".into()),
            name: "Payroll SaaS".into(),
            result: CheckResult::Pass,
            notes: "SOC 2 type II reviewed".into(),
            criticality: Some(Severity::High),
            next_assessment: Some(Timestamp(at("2026-07-22", 10))),
        },
    ));
    s.push(step(
        at("2025-07-24", 15),
        Ceo,
        Event::RiskAccepted {
            risk_id: risk("RISK-006"),
            justification:
                "Score 6 accepted: transferred by insurance and contract; reviewed yearly".into(),
        },
    ));
    s.push(step(
        at("2025-08-04", 9),
        Infra,
        Event::IncidentRecorded {
            incident_id: IncidentId("INC-2025-01".into()),
            title: "Phishing email led to one credential reset".into(),
            severity: Severity::Medium,
            controls: ids(&["A.6.3", "A.8.5"]),
            detected_at: Some(Timestamp(at("2025-08-04", 8))),
            assets: vec!["AS-004".into()],
            nonconformity: false,
            near_miss: false,
        },
    ));
    s.push(step(
        at("2025-08-06", 9),
        Infra,
        Event::IncidentClosed {
            incident_id: IncidentId("INC-2025-01".into()),
            resolution: "MFA blocked the login; password reset, user retrained".into(),
            corrective_actions: Vec::new(),
        },
    ));

    // The Q3 audit, one minor finding closed and verified.
    s.push(step(
        at("2025-09-01", 9),
        Auditor,
        Event::AuditPlanned {
            audit_id: AuditId("IA-2025-Q3".into()),
            scope: "Annex A technology controls A.8.1-A.8.16".into(),
            auditor: "Internal auditor".into(),
            start: Timestamp::parse_date("2025-09-08").expect("date"),
            end: Timestamp::parse_date("2025-09-12").expect("date"),
            areas: vec![AuditArea {
                area: "Configuration management (A.8.9)".into(),
                auditee: "Platform Team".into(),
                evidence_requested: vec!["AWS Config compliance report".into()],
            }],
        },
    ));
    s.push(step(
        at("2025-09-12", 16),
        Auditor,
        Event::FindingRaised {
            finding_id: FindingId("F-2025-05".into()),
            audit_id: AuditId("IA-2025-Q3".into()),
            grade: FindingGrade::MinorNonconformity,
            area: "Configuration management (A.8.9)".into(),
            description: "Baseline drift on 3 of 40 hosts".into(),
            controls: ids(&["A.8.9"]),
            auditee: "Platform Team".into(),
        },
    ));
    s.push(step(
        at("2025-09-12", 17),
        Auditor,
        Event::AuditCompleted {
            audit_id: AuditId("IA-2025-Q3".into()),
            summary: "1 minor".into(),
        },
    ));
    s.push(step(
        at("2025-09-15", 10),
        Auditor,
        open(
            "CA-2025-04",
            "F-2025-05",
            "Re-baseline drifted hosts and alert on drift",
            "Platform Team",
        ),
    ));
    s.push(step(
        at("2025-09-18", 10),
        Infra,
        Event::ContinuityTestHeld {
            test_id: TestId("DR-2025".into()),
            plan: "Regional failover of the production stack".into(),
            result: CheckResult::Pass,
            controls: ids(&["A.5.29", "A.5.30", "A.8.14"]),
        },
    ));
    rescore(
        &mut s,
        at("2025-09-20", 10),
        "RISK-003",
        2,
        2,
        "Multi-region failover tested (DR-2025)",
    );
    s.push(step(
        at("2025-10-20", 11),
        Infra,
        Event::CorrectiveActionClosed {
            action_id: action("CA-2025-04"),
            resolution: "Hosts re-baselined; drift alert in AWS Config".into(),
        },
    ));
    s.push(step(
        at("2025-10-27", 10),
        Auditor,
        Event::CorrectiveActionVerified {
            action_id: action("CA-2025-04"),
            effective: true,
            note: "No drift in 4 weeks of reports".into(),
        },
    ));
    // The first review's decisions carried out before the second review, which reports them
    // (its inputs include the status of previous actions); the last one stays open.
    for (decision, when, resolution) in [
        (1, "2025-09-15", "Security champions named in each team"),
        (
            2,
            "2025-10-01",
            "Scope updated to include the support desk tooling",
        ),
        (3, "2025-11-03", "Security engineer hired"),
    ] {
        s.push(step(
            at(when, 16),
            Ceo,
            Event::ReviewDecisionClosed {
                review_id: ReviewId("MR-2025-1".into()),
                decision,
                resolution: resolution.into(),
            },
        ));
    }
    s.push(step(
        at("2025-12-10", 14),
        Ceo,
        Event::ManagementReviewHeld {
            review_id: ReviewId("MR-2025-2".into()),
            attendees: vec!["CEO".into(), "CISO".into(), "CTO".into()],
            inputs_covered: ReviewInput::ALL.iter().map(|(i, _)| *i).collect(),
            references: review_pack("MR-2025-2"),
            decisions: vec![
                (
                    ReviewOutput::Improvement,
                    "Extend scanning to containers".into(),
                ),
                (ReviewOutput::IsmsChanges, "None".into()),
                (
                    ReviewOutput::Resources,
                    "Keep the 2026 security budget".into(),
                ),
                (
                    ReviewOutput::RiskAcceptance,
                    "RISK-006 acceptance renewed".into(),
                ),
            ],
        },
    ));
    access_reviews_vulnerabilities_and_patching(&mut s);
    certification_body_findings(&mut s);
    audit_evidence_received(&mut s);
    s.sort_by_key(|x| x.at);
    Ok(s)
}

/// Each mandatory input of a management review, referenced to its section of the review pack.
fn review_pack(review: &str) -> Vec<InputReference> {
    ReviewInput::ALL
        .iter()
        .enumerate()
        .map(|(n, (input, _))| InputReference {
            input: *input,
            reference: format!("{review} pack, section {}", n + 1),
        })
        .collect()
}

/// What the internal audits' areas requested and the auditor received: in Q1 everything but
/// last quarter's access review records (the gap finding F-2025-01 names).
fn audit_evidence_received(s: &mut Vec<Step>) {
    for (n, (audit, area, item, reference)) in [
        (
            "IA-2025-Q1",
            "Access Control (A.5.15)",
            "Joiner/mover/leaver process records",
            "HR tickets JML-2025-001..118",
        ),
        (
            "IA-2025-Q1",
            "Access Control (A.5.15)",
            "Privileged access management logs",
            "PAM export, January-February",
        ),
        (
            "IA-2025-Q1",
            "Risk Management (Clause 6.1)",
            "Current risk register",
            "isms register risks --as-of 2025-03-10",
        ),
        (
            "IA-2025-Q1",
            "Risk Management (Clause 6.1)",
            "Risk assessment methodology document",
            "POL-RISK v1.0",
        ),
        (
            "IA-2025-Q1",
            "Risk Management (Clause 6.1)",
            "Management risk review meeting minutes",
            "Minutes of 2025-01-20",
        ),
        (
            "IA-2025-Q3",
            "Configuration management (A.8.9)",
            "AWS Config compliance report",
            "AWS Config report, 2025-09-09",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let day = if audit == "IA-2025-Q1" {
            "2025-03-11"
        } else {
            "2025-09-09"
        };
        s.push(step(
            at(day, 9 + n as i64),
            Actor::Auditor,
            Event::AuditEvidenceReceived {
                audit_id: AuditId(audit.into()),
                area: area.into(),
                item: item.into(),
                reference: reference.into(),
            },
        ));
    }
}

/// The stage 2 audit's two minor nonconformities, recorded one by one, each answered by a
/// corrective action closed before the year ends (verified at the first surveillance audit).
fn certification_body_findings(s: &mut Vec<Step>) {
    use Actor::{Auditor, Infra};
    for (n, (id, area, control, description, action, resolution)) in [
        (
            "F-CB-2025-01",
            "Supplier relationships (A.5.21)",
            "A.5.21",
            "Security review of one cloud provider not evidenced",
            "CA-CB-2025-01",
            "Provider's SOC 2 report reviewed and filed",
        ),
        (
            "F-CB-2025-02",
            "Logging (A.8.15)",
            "A.8.15",
            "Log retention for the payment API below the policy's 12 months",
            "CA-CB-2025-02",
            "Retention raised to 13 months; alert on shorter retention",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let hour = 18 + n as i64;
        s.push(step(
            at("2025-11-19", hour),
            Auditor,
            Event::FindingRaised {
                finding_id: FindingId(id.into()),
                audit_id: AuditId("CB-2025-S2".into()),
                grade: FindingGrade::MinorNonconformity,
                area: area.into(),
                description: description.into(),
                controls: ids(&[control]),
                auditee: "Head of Infrastructure".into(),
            },
        ));
        s.push(step(
            at("2025-11-24", 10 + n as i64),
            Auditor,
            Event::CorrectiveActionOpened {
                action_id: ActionId(action.into()),
                finding_id: FindingId(id.into()),
                description: format!("Correct: {description}"),
                owner: "Head of Infrastructure".into(),
            },
        ));
        s.push(step(
            at("2025-11-26", 10 + n as i64),
            Infra,
            Event::RootCauseRecorded {
                action_id: ActionId(action.into()),
                root_cause: "The control was operated without a named owner".into(),
            },
        ));
        s.push(step(
            at("2025-12-08", 10 + n as i64),
            Infra,
            Event::CorrectiveActionClosed {
                action_id: ActionId(action.into()),
                resolution: resolution.into(),
            },
        ));
    }
}

/// The raw facts behind three of the seed's KPIs: quarterly access reviews (one done late,
/// one still to do), the scanner's vulnerabilities (one fixed late, one open) and its patch
/// compliance measurements.
fn access_reviews_vulnerabilities_and_patching(s: &mut Vec<Step>) {
    use Actor::{Infra, Scanner};
    let day = |d: &str| projections::Timestamp(at(d, 0));
    for (id, system, due, completed, reviewed, removed) in [
        (
            "AR-2025-Q1",
            "Production AWS",
            "2025-03-31",
            Some("2025-03-27"),
            42,
            3,
        ),
        (
            "AR-2025-Q2",
            "HR system",
            "2025-06-30",
            Some("2025-07-09"),
            120,
            7,
        ),
        (
            "AR-2025-Q3",
            "Production AWS",
            "2025-09-30",
            Some("2025-09-24"),
            44,
            2,
        ),
        ("AR-2025-Q4", "Finance ERP", "2025-12-31", None, 0, 0),
    ] {
        let record = |completed: Option<&str>| Event::AccessReviewRecorded {
            review_id: AccessReviewId(id.into()),
            system: system.into(),
            reviewer: "Head of Infrastructure".into(),
            due: day(due),
            completed: completed.map(day),
            accounts_reviewed: if completed.is_some() { reviewed } else { 0 },
            accounts_removed: if completed.is_some() { removed } else { 0 },
        };
        // Scheduled at the start of the year, recorded again when done.
        s.push(step(at("2025-01-15", 9), Infra, record(None)));
        if let Some(done) = completed {
            s.push(step(at(done, 16), Infra, record(Some(done))));
        }
    }
    for (id, title, severity, asset, detected, remediated) in [
        (
            "VULN-2025-001",
            "OpenSSL flaw in the edge proxy",
            Severity::Critical,
            "AS-003",
            "2025-02-10",
            Some("2025-02-14"),
        ),
        (
            "VULN-2025-002",
            "Outdated TLS configuration on the API",
            Severity::High,
            "AS-003",
            "2025-04-02",
            Some("2025-05-20"),
        ),
        (
            "VULN-2025-003",
            "Unpatched browser on laptops",
            Severity::Medium,
            "AS-005",
            "2025-08-11",
            None,
        ),
    ] {
        let record = |remediated: Option<&str>| Event::VulnerabilityRecorded {
            vulnerability_id: VulnerabilityId(id.into()),
            title: title.into(),
            severity,
            asset: Some(AssetId(asset.into())),
            detected: day(detected),
            remediated: remediated.map(day),
            due: None,
        };
        s.push(step(at(detected, 7), Scanner, record(None)));
        if let Some(fixed) = remediated {
            s.push(step(at(fixed, 7), Scanner, record(Some(fixed))));
        }
    }
    for (scope, date, total, compliant) in [
        ("servers", "2025-03-31", 42, 40),
        ("servers", "2025-06-30", 42, 41),
        ("laptops", "2025-06-30", 200, 180),
        ("servers", "2025-09-30", 42, 42),
        ("laptops", "2025-12-15", 200, 194),
    ] {
        s.push(step(
            at(date, 6),
            Scanner,
            Event::PatchComplianceMeasured {
                scope: scope.into(),
                devices_total: total,
                devices_compliant: compliant,
            },
        ));
    }
}

fn prepare(dir: &Path, force: bool) -> anyhow::Result<()> {
    if dir.exists() {
        let non_empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some();
        // A folder an earlier demo made is replaced without asking, so the README's first
        // command can be run again; anything else needs --force.
        let earlier_demo = dir.join(DEMO_MARKER).exists();
        if non_empty && !force && !earlier_demo {
            anyhow::bail!(
                "{} is not empty and was not made by `isms demo`; pass --force to replace the demo in it, or choose --dir",
                dir.display()
            );
        }
        for sub in ["data", "keys", "witness"] {
            let p = dir.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
        for file in ["report.html", "ledger.bundle", "ledger.vkey"] {
            let _ = std::fs::remove_file(dir.join(file));
        }
    }
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::write(
        dir.join(DEMO_MARKER),
        "made by `isms demo`; running it again replaces this folder's demo\n",
    )?;
    Ok(())
}

/// The file that marks a folder as made by `isms demo`.
const DEMO_MARKER: &str = ".isms-demo";

/// The risk register as of two points, side by side.
fn side_by_side(march: &TextTable, today: &TextTable) -> TextTable {
    let col = |t: &TextTable, name: &str| t.columns.iter().position(|c| c == name);
    let cell = |t: &TextTable, row: Option<&Vec<String>>, name: &str| -> String {
        match (row, col(t, name)) {
            (Some(r), Some(i)) => r.get(i).cloned().unwrap_or_default(),
            (None, _) => "—".into(),
            _ => String::new(),
        }
    };
    let mut ids: Vec<String> = today.rows.iter().map(|r| r[0].clone()).collect();
    for r in &march.rows {
        if !ids.contains(&r[0]) {
            ids.push(r[0].clone());
        }
    }
    ids.sort();
    let mut out = TextTable::new([
        "risk",
        "asset",
        "inherent",
        "residual 31 Mar",
        "status 31 Mar",
        "residual today",
        "status today",
    ]);
    for id in ids {
        let m = march.rows.iter().find(|r| r[0] == id);
        let t = today.rows.iter().find(|r| r[0] == id);
        out.push(vec![
            id.clone(),
            cell(today, t, "asset"),
            cell(today, t, "inherent"),
            cell(march, m, "residual"),
            cell(march, m, "status"),
            cell(today, t, "residual"),
            cell(today, t, "status"),
        ]);
    }
    out
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    prepare(&args.dir, args.force)?;
    let dir = args.dir.clone();
    block_on(async move { demo(&dir, args.console).await })?
}

async fn demo(dir: &Path, console: Option<SocketAddr>) -> anyhow::Result<()> {
    let clock = Arc::new(DemoClock::default());
    let start = at("2025-01-06", 9);
    clock.set(start);
    let data = dir.join("data");
    let keys_dir = dir.join("keys");
    let ledger_key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_secret(
        &data.join(LEDGER_KEY_FILE),
        &format!("{}\n", hex::encode(ledger_key.to_bytes())),
    )?;
    let ciso_key = new_key_file(&keys_dir.join("ciso.key"))?;
    let config = LedgerConfig {
        clock: clock.clone(),
        ..LedgerConfig::default()
    };
    let ledger = Ledger::create(
        data.join(STORE_DIR),
        "Example Ltd",
        ledger_key.clone(),
        vec![KeyGrant {
            public_key: ciso_key.verifying_key().to_bytes(),
            subject: "ciso@example.com".into(),
            roles: vec!["admin".into(), "management".into()],
        }],
        config,
    )
    .context("creating the demo ledger")?;
    let ledger = Arc::new(ledger);
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    // An independent witness beside the server, as an auditor would run one: it cosigns each
    // checkpoint it is offered only if it extends what it cosigned before.
    let witness_dir = dir.join("witness");
    let witness = crate::witness::init(&witness_dir, "witness.auditor.example/demo")
        .context("creating the demo witness")?;
    crate::witness::add_ledger(
        &witness_dir,
        &ledger::checkpoint::verifier_key(ledger.origin(), &ledger.public_key()),
    )?;
    let witness_server =
        crate::witness::http::start(Arc::new(crate::witness::open(&witness_dir)?), listen).await?;
    let running = server::start(
        ledger.clone(),
        ServeOptions {
            listen,
            allow_anonymous_reads: false,
            tls: None,
            limits: crate::server::limits::Limits::default(),
            metrics: None,
            http: console,
            witnessing: crate::server::Witnessing {
                witnesses: vec![crate::server::witnesses::WitnessConfig {
                    name: "auditor".into(),
                    url: format!("http://{}", witness_server.addr),
                    verifier: witness.clone(),
                }],
                schedule: crate::server::witnesses::WitnessSchedule {
                    interval: std::time::Duration::from_millis(200),
                    ..Default::default()
                },
            },
        },
    )
    .await?;
    let url = format!("http://{}", running.addr);
    println!(
        "isms demo: ledger in {}, server on {url} (in-process), witness {} on http://{}",
        data.display(),
        witness,
        witness_server.addr
    );
    let result = drive(dir, &url, &clock, ciso_key, &ledger_key).await;
    if let (Ok(()), Some(addr)) = (&result, running.http_addr) {
        let auditor = crate::client::read_key(&dir.join("keys/auditor.key"))?;
        let expires = UnixMicros::now().0 + 8 * 3_600_000_000;
        let token = crate::console::session::token(&auditor, ledger.origin(), expires);
        let base = format!("http://{addr}");
        println!(
            "\nisms demo: console on {base}/ — open this link to sign in as the auditor (valid \
             8 hours):\n  {}\nisms demo: serving until Ctrl-C",
            super::console::link(&base, &token, "/")
        );
        super::wait_for_signal().await?;
    }
    running.shutdown().await?;
    witness_server.shutdown().await?;
    result
}

async fn drive(
    dir: &Path,
    url: &str,
    clock: &DemoClock,
    ciso_key: SigningKey,
    ledger_key: &SigningKey,
) -> anyhow::Result<()> {
    let mut clients: BTreeMap<Actor, Client> = BTreeMap::new();
    let mut ciso = Client::connect_with(url, Some(ciso_key)).await?;
    let ledger_id = ciso.ledger_id().await?;
    // Enrol the other five keys.
    clock.set(at("2025-01-06", 10));
    let mut enrol = Vec::new();
    for (actor, file, subject, roles) in Actor::ENROLLED {
        let key = new_key_file(&dir.join("keys").join(format!("{file}.key")))?;
        enrol.push(Pending {
            expected_version: None,
            event_id: format!("demo-enrol-{file}"),
            effective_at: at("2025-01-06", 10),
            event: Event::KeyEnrolled(KeyEnrolment {
                public_key: key.verifying_key().to_bytes(),
                subject: Subject(subject.into()),
                roles: roles.iter().filter_map(|r| Role::parse(r)).collect(),
            }),
            artifacts: Vec::new(),
        });
        clients.insert(actor, Client::connect_with(url, Some(key)).await?);
    }
    check(append_events(&mut ciso, &ledger_id, enrol).await?)?;
    clients.insert(Actor::Ciso, ciso);
    println!(
        "isms demo: enrolled 6 keys (ciso/admin, ceo, cto, head of infra, auditor, scanner) in {}",
        dir.join("keys").display()
    );

    // Group consecutive steps with the same time and actor into one stream.
    let steps = story()?;
    let total = steps.len();
    let bar = crate::output::progress(total as u64, "submitting");
    let mut i = 0;
    let mut seq_no = 0usize;
    while i < steps.len() {
        let (when, actor) = (steps[i].at, steps[i].actor);
        let mut batch = Vec::new();
        let client = clients.get_mut(&actor).expect("every actor has a client");
        while i < steps.len() && steps[i].at == when && steps[i].actor == actor {
            let s = &steps[i];
            let mut artifacts = Vec::new();
            if let Some((name, bytes)) = &s.artifact {
                let hash = client.put_artifact(bytes.clone()).await?;
                artifacts.push(ArtifactRef {
                    blake3: hash,
                    size: bytes.len() as u64,
                    media_type: "application/json".into(),
                    name: name.clone(),
                });
            }
            seq_no += 1;
            batch.push(Pending {
                expected_version: None,
                event_id: format!("demo-{seq_no:04}-{}", s.event.kind().name()),
                effective_at: s.at,
                event: s.event.clone(),
                artifacts,
            });
            i += 1;
        }
        clock.set(when);
        check(append_events(client, &ledger_id, batch).await?)?;
        bar.set_position(i as u64);
    }
    bar.finish_and_clear();
    println!("isms demo: submitted {total} events of 2025 activity over gRPC\n");

    let reader = clients.get_mut(&Actor::Auditor).expect("auditor");
    let march = fetch(
        reader,
        RegisterName::Risks,
        Some(isms_proto::v1::AsOf {
            point: Some(isms_proto::v1::as_of::Point::RecordedAtUs(dates::parse(
                "2025-03-31",
                dates::BareDate::EndOfDay,
            )?)),
        }),
    )
    .await?;
    let today = fetch(reader, RegisterName::Risks, None).await?;
    println!(
        "Risk register as of 2025-03-31 (end of day, {} entries) beside today ({}, {} entries):\n",
        march.entries,
        dates::show(today.now_us - today.now_us.rem_euclid(Timestamp::DAY)),
        today.entries
    );
    print!("{}", side_by_side(&march.table, &today.table).render());

    let vkey = ledger_vkey(
        &ledger::origin_of(&ledger::LedgerId(
            ledger_id.as_slice().try_into().context("ledger id")?,
        )),
        &ledger_key.verifying_key(),
    );
    // The witness is offered the latest checkpoint every 200 ms; wait (a bounded while) until
    // it has cosigned the whole year, so the report can say so.
    let head = reader.status().await?.size;
    let mut witnessed = Vec::new();
    for _ in 0..100 {
        let status = reader.status().await?;
        if status.witnesses.iter().all(|w| w.cosigned_size >= head) {
            witnessed = super::report::witnessed_lines(reader).await;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    println!();
    if witnessed.is_empty() {
        println!("the witness has not cosigned the latest checkpoint yet");
    }
    for line in &witnessed {
        println!("witnessed: {line}");
    }
    let (verified, _) = verify_server(reader, Some(ledger_key.verifying_key())).await?;
    println!();
    match &verified {
        Ok(v) => println!("{}", verified_text(v)),
        Err(e) => println!("verification FAILED: {e}"),
    }
    std::fs::write(dir.join("ledger.vkey"), format!("{vkey}\n"))?;
    let bundle = build_bundle(reader, true).await?;
    std::fs::write(dir.join("ledger.bundle"), bundle.to_bytes())?;
    let html = super::report::build(
        reader,
        &Default::default(),
        Some(ledger_key.verifying_key()),
    )
    .await?;
    std::fs::write(dir.join("report.html"), html)?;
    let d = dir.display();
    println!(
        "\nwrote {d}/report.html, {d}/ledger.bundle and {d}/ledger.vkey. Next:\n  \
         isms serve --data {d}/data --http 127.0.0.1:8080 &\n  \
         isms console link --key {d}/keys/auditor.key --url http://127.0.0.1:8080   # open the link\n  \
         isms register risks --key {d}/keys/ciso.key --as-of 2025-03-31\n  \
         isms verify --offline {d}/ledger.bundle --ledger-key {d}/ledger.vkey"
    );
    verified
        .map(|_| ())
        .map_err(|e| super::VerificationFailed(e.to_string()).into())
}

fn check(outcomes: Vec<super::submit::Outcome>) -> anyhow::Result<()> {
    for o in outcomes {
        if let Err(e) = o.result {
            anyhow::bail!(
                "the demo's event {} ({} {}) was refused: {}",
                o.event_id,
                o.kind,
                o.entity,
                crate::client::describe_refusal(e.code, &e.message)
            );
        }
    }
    Ok(())
}
