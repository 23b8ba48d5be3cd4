//! Registers: read-only views of a `State` at a query time `now` (due dates, overdue items,
//! trailing-window coverage and readiness depend on it). Every row can be rendered as named
//! text cells, which is what `query::diff` compares field by field.

use std::collections::BTreeMap;

use crate::{
    catalog::{catalog, ControlId},
    model::*,
    state::{
        AccessReview, ActionStatus, Audit, Meta, RiskHistory, RiskStatus, State, Vulnerability,
    },
};

/// A register rendered as rows of named cells, keyed by the row's id.
pub type Table = BTreeMap<String, Vec<(&'static str, String)>>;

/// One line of the audit programme's coverage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverageRow {
    /// `Clause 9` or an Annex A control id.
    pub item: String,
    /// The latest completed audit that covered it, and when it was completed.
    pub last: Option<(AuditId, Timestamp)>,
    /// Whether that was within the last 12 months.
    pub in_last_12_months: bool,
}

/// The ISO 27001 clauses (4-10) a text names: "Clauses 4-10", "clause 9", "Clauses 4, 5".
pub fn clauses_named(text: &str) -> Vec<u8> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for (at, _) in lower.match_indices("clause") {
        let rest: String = lower[at..]
            .trim_start_matches("clauses")
            .trim_start_matches("clause")
            .chars()
            .take_while(|c| c.is_ascii_digit() || " ,-–and&".contains(*c))
            .collect();
        let rest = rest.replace('–', "-");
        for part in rest.split([',', '&']).flat_map(|p| p.split(" and ")) {
            let bounds: Vec<u8> = part
                .split('-')
                .filter_map(|n| n.trim().parse().ok())
                .collect();
            match bounds[..] {
                [one] => out.push(one),
                [from, to] if from <= to => out.extend(from..=to),
                _ => {}
            }
        }
    }
    out.retain(|c| (4..=10).contains(c));
    out
}

/// The Annex A controls a text names (`A.5.15`, `A.8.8`).
pub fn controls_named(text: &str) -> Vec<ControlId> {
    text.match_indices("A.")
        .filter_map(|(at, _)| {
            let id: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            ControlId::parse(id.trim_end_matches('.')).ok()
        })
        .collect()
}

/// The first number in a text ("3.8%" -> 3.8, "< 30 days" -> 30).
fn first_number(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().ok()
}

/// Whether a measured `value` meets an objective's `target` ("< 5%", ">= 95%", "at most 30
/// days", "≥ 90%"); None when the target states no comparison or either has no number.
pub fn meets_target(target: &str, value: &str) -> Option<bool> {
    let t = target.trim().to_lowercase();
    let (limit, got) = (first_number(&t)?, first_number(value)?);
    let at = |p: &str| t.starts_with(p);
    Some(if at("<=") || at("≤") || at("at most") || at("max") {
        got <= limit
    } else if at("<") || at("under") || at("below") || at("less than") {
        got < limit
    } else if at(">=") || at("≥") || at("at least") || at("min") {
        got >= limit
    } else if at(">") || at("over") || at("above") || at("more than") {
        got > limit
    } else if at("=") {
        got == limit
    } else {
        return None;
    })
}

/// Whether something done at `done` met the deadline `due`: on the due day counts as on time.
fn done_on_time(done: Timestamp, due: Timestamp) -> bool {
    done.day_number() <= due.day_number()
}

/// The evidence an audit's areas requested and the auditor has not received, as
/// `area: item`.
pub fn outstanding_evidence(audit: &Audit) -> Vec<String> {
    audit
        .areas
        .iter()
        .flat_map(|area| {
            area.evidence_requested
                .iter()
                .filter(|item| {
                    !audit
                        .received
                        .iter()
                        .any(|r| r.area == area.area && &r.item == *item)
                })
                .map(move |item| format!("{}: {item}", area.area))
        })
        .collect()
}

/// Every register [`Registers::tables`] produces, in its order.
pub const REGISTER_NAMES: [&str; 24] = [
    "risk_register",
    "soa",
    "corrective_actions",
    "evidence",
    "audits",
    "findings",
    "audit_coverage",
    "certification_cycle",
    "assets",
    "scope",
    "policies",
    "objectives",
    "continuity_tests",
    "legal_requirements",
    "incidents",
    "training",
    "suppliers",
    "access_reviews",
    "vulnerabilities",
    "patch_compliance",
    "management_reviews",
    "review_actions",
    "kpis",
    "readiness",
];

/// Orders row ids as people number them: `A.5.2` before `A.5.10`, `R-9` before `R-10`. Runs
/// of digits compare as numbers, everything else as text; ids equal that way fall back to
/// plain text order, so the order is total.
pub fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digits = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some((digits, run))
        })
    }
    let mut left = runs(a);
    let mut right = runs(b);
    loop {
        let ordering = match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some((true, x)), Some((true, y))) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            (Some((_, x)), Some((_, y))) => x.cmp(y),
        };
        if ordering.is_ne() {
            return ordering;
        }
    }
}

/// All registers of one state at one query time.
#[derive(Clone, Copy, Debug)]
pub struct Registers<'s> {
    /// The folded state.
    pub state: &'s State,
    /// The query time: due dates and "overdue" are judged against it.
    pub now: Timestamp,
}

/// One row of the risk register.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RiskRow {
    pub risk_id: RiskId,
    pub asset: String,
    pub threat: String,
    pub vulnerability: String,
    pub owner: String,
    pub inherent: Option<(Likelihood, Impact, Score, Band)>,
    pub residual: Option<(Likelihood, Impact, Score, Band)>,
    pub treatment: Option<Treatment>,
    pub controls: Vec<ControlId>,
    pub status: RiskStatus,
    pub accepted: Option<Meta>,
    /// (residual?, score, entry) in the order recorded, collected when read: the history
    /// grows with every rescoring, the rest of the row does not.
    pub history: RiskHistory,
    pub version: u64,
}

/// The status of one SoA row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoaStatus {
    /// Never touched.
    NotYetAssessed,
    /// Applicability set, not approved (or changed since approval).
    Assessed,
    /// Approved by management and unchanged since.
    Approved,
}

/// One row of the Statement of Applicability (there are always 93).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SoaRow {
    pub control_id: ControlId,
    pub title: &'static str,
    pub theme: &'static str,
    pub applicable: Option<bool>,
    pub justification: String,
    pub implementation: String,
    pub implementation_status: Option<ImplementationStatus>,
    pub owner: String,
    pub status: SoaStatus,
    /// The approving SoA version and entry.
    pub approval: Option<(String, u64)>,
    pub version: u64,
}

/// One corrective action with its SLA due dates judged at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ActionRow {
    pub action_id: ActionId,
    pub finding_id: FindingId,
    pub grade: Option<FindingGrade>,
    pub owner: String,
    pub status: ActionStatus,
    /// Major: finding date + 10 days.
    pub root_cause_due: Option<Timestamp>,
    pub root_cause_recorded: bool,
    /// Major: + 30 days; minor: + 60 days; observation: next review cycle (none).
    pub action_due: Option<Timestamp>,
    /// Due dates passed at `now` without the step done.
    pub overdue: Vec<&'static str>,
    pub closed_by: Option<Subject>,
    pub verified_by: Option<Subject>,
    pub version: u64,
}

/// Evidence for one control at `now`.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub struct EvidenceRow {
    pub control_id: ControlId,
    pub count: u64,
    pub passed: u64,
    pub failed: u64,
    pub latest: Option<(EvidenceId, CheckResult, Timestamp, u64)>,
    /// Share of the 13 weeks before `now` with at least one item collected, 0.0..=1.0.
    pub coverage_3_months: f64,
    /// Days between the first and the latest collection.
    pub span_days: i64,
}

/// A KPI from the seed's `kpis_to_report`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kpi {
    /// The seed's wording.
    pub name: &'static str,
    /// The value as text ("3 (1 high)", "87.5%", "n/a").
    pub value: String,
}

/// Met, partly met or not met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Fully met by ledger state.
    Met,
    /// Some of it is there.
    PartlyMet,
    /// Nothing in the ledger supports it.
    NotMet,
}

/// One item of the seed's certification checklists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadinessItem {
    /// `stage_1`, `stage_2` or `surveillance`.
    pub stage: &'static str,
    /// The seed's wording.
    pub item: &'static str,
    /// The verdict.
    pub status: Readiness,
    /// Why, in a sentence.
    pub reason: String,
    /// The entries (seqs) that justify it.
    pub entries: Vec<u64>,
}

/// Coverage of the mandatory inputs and outputs by one management review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewRow {
    /// The review.
    pub review_id: ReviewId,
    /// When it was held.
    pub held_at: Timestamp,
    /// Mandatory inputs covered / missing.
    pub inputs_missing: Vec<&'static str>,
    /// Mandatory outputs decided / missing.
    pub outputs_missing: Vec<&'static str>,
    /// The guide's required attendees no one present stood for.
    pub attendees_missing: Vec<&'static str>,
    /// Inputs covered without saying where they were presented.
    pub inputs_without_reference: Vec<&'static str>,
    /// The entry.
    pub seq: u64,
}

/// The guide's required attendees of a management review, each with the words (lower case)
/// an attendee's name or title is recognised by.
pub const REQUIRED_ATTENDEES: [(&str, &[&str]); 3] = [
    (
        "CEO or Managing Director",
        &["ceo", "managing director", "chief executive"],
    ),
    (
        "CISO or Information Security Manager",
        &[
            "ciso",
            "information security manager",
            "chief information security",
        ],
    ),
    (
        "Department heads",
        &[
            "head of",
            "department head",
            "cto",
            "cfo",
            "coo",
            "cio",
            "vp ",
            "vice president",
        ],
    ),
];

/// The required attendees that no one in `attendees` stands for.
pub fn attendees_missing(attendees: &[String]) -> Vec<&'static str> {
    REQUIRED_ATTENDEES
        .iter()
        .filter(|(_, words)| {
            !attendees.iter().any(|a| {
                let a = format!("{} ", a.to_lowercase());
                words.iter().any(|w| a.contains(w))
            })
        })
        .map(|(role, _)| *role)
        .collect()
}

impl Registers<'_> {
    /// The risk register.
    pub fn risk_register(&self) -> Vec<RiskRow> {
        let scored = |p: Option<(Likelihood, Impact)>| {
            p.map(|(l, i)| {
                let s = Score::of(l, i);
                (l, i, s, s.band())
            })
        };
        self.state
            .risks
            .iter()
            .map(|(id, r)| RiskRow {
                risk_id: id.clone(),
                asset: r.asset.clone(),
                threat: r.threat.clone(),
                vulnerability: r.vulnerability.clone(),
                owner: r.owner.clone(),
                inherent: scored(r.inherent),
                residual: scored(r.residual),
                treatment: r.treatment,
                controls: r.controls.clone(),
                status: r.status,
                accepted: r.acceptance.as_ref().map(|(_, m)| m.clone()),
                history: self.state.history.of(id),
                version: r.version,
            })
            .collect()
    }

    /// The Statement of Applicability: all 93 controls in catalog order.
    pub fn soa(&self) -> Vec<SoaRow> {
        catalog()
            .iter()
            .map(|c| {
                let row = self.state.soa.get(&c.id);
                let status = match row {
                    Some(r) if r.approval.is_some() && r.applicable.is_some() => {
                        SoaStatus::Approved
                    }
                    Some(r) if r.applicable.is_some() => SoaStatus::Assessed,
                    _ => SoaStatus::NotYetAssessed,
                };
                SoaRow {
                    control_id: c.id,
                    title: c.title,
                    theme: c.theme,
                    applicable: row.and_then(|r| r.applicable),
                    justification: row.map(|r| r.justification.clone()).unwrap_or_default(),
                    implementation: row.map(|r| r.implementation.clone()).unwrap_or_default(),
                    implementation_status: row.and_then(|r| r.status),
                    owner: row.map(|r| r.owner.clone()).unwrap_or_default(),
                    status,
                    approval: row
                        .and_then(|r| r.approval.as_ref())
                        .map(|(v, m)| (v.clone(), m.seq)),
                    version: row.map_or(0, |r| r.version),
                }
            })
            .collect()
    }

    /// Corrective actions with SLA due dates and what is overdue at `now`.
    pub fn corrective_actions(&self) -> Vec<ActionRow> {
        self.state
            .actions
            .iter()
            .map(|(id, a)| {
                let (root_cause_due, action_due) = match a.grade {
                    Some(FindingGrade::MajorNonconformity) => (
                        Some(a.raised_at.plus_days(10)),
                        Some(a.raised_at.plus_days(30)),
                    ),
                    Some(FindingGrade::MinorNonconformity) => {
                        (None, Some(a.raised_at.plus_days(60)))
                    }
                    _ => (None, None),
                };
                let mut overdue = Vec::new();
                if root_cause_due.is_some_and(|d| d < self.now) && a.root_cause.is_none() {
                    overdue.push("root_cause");
                }
                if action_due.is_some_and(|d| d < self.now) && a.status == ActionStatus::Open {
                    overdue.push("action");
                }
                ActionRow {
                    action_id: id.clone(),
                    finding_id: a.finding_id.clone(),
                    grade: a.grade,
                    owner: a.owner.clone(),
                    status: a.status,
                    root_cause_due,
                    root_cause_recorded: a.root_cause.is_some(),
                    action_due,
                    overdue,
                    closed_by: a.closed.as_ref().map(|(_, m)| m.subject.clone()),
                    verified_by: a.verified.as_ref().map(|(_, _, m)| m.subject.clone()),
                    version: a.version,
                }
            })
            .collect()
    }

    /// Evidence per control (only controls with evidence).
    pub fn evidence(&self) -> Vec<EvidenceRow> {
        let today = self.now.day_number();
        self.state
            .evidence
            .iter()
            .map(|(c, e)| {
                // Weeks 0..13 before now that hold at least one collection day.
                let from = today - 13 * 7 + 1;
                let weeks: std::collections::BTreeSet<i64> = (from..=today)
                    .filter(|d| e.days.contains(*d))
                    .map(|d| (today - d) / 7)
                    .collect();
                let span_days = match (e.days.first(), e.days.last()) {
                    (Some(a), Some(b)) => b - a,
                    _ => 0,
                };
                EvidenceRow {
                    control_id: *c,
                    count: e.count,
                    passed: e.passed,
                    failed: e.failed,
                    latest: e
                        .latest
                        .as_ref()
                        .map(|(id, r, at, m)| (id.clone(), *r, *at, m.seq)),
                    coverage_3_months: weeks.len() as f64 / 13.0,
                    span_days,
                }
            })
            .collect()
    }

    /// The internal audit programme's coverage over the last 12 months: for each of clauses
    /// 4-10 and each applicable Annex A control, the latest completed audit that covered it.
    /// An audit covers the clauses its scope or areas name ("Clauses 4-10", "clause 9") and
    /// the controls they name (`A.5.15`) or its findings cite.
    pub fn audit_coverage(&self) -> Vec<CoverageRow> {
        let year_ago = self.now.plus_days(-365);
        /// What one completed audit covered.
        struct Audited<'a> {
            clauses: Vec<u8>,
            controls: Vec<ControlId>,
            audit_id: &'a AuditId,
            completed_at: Timestamp,
        }
        let mut audited: Vec<Audited> = Vec::new();
        for (id, audit) in &self.state.audits {
            let Some((_, done)) = &audit.completed else {
                continue;
            };
            let mut texts = vec![audit.scope.as_str()];
            texts.extend(audit.areas.iter().map(|a| a.area.as_str()));
            let mut clauses: Vec<u8> = texts.iter().flat_map(|t| clauses_named(t)).collect();
            let mut controls: Vec<ControlId> =
                texts.iter().flat_map(|t| controls_named(t)).collect();
            for finding in self.state.findings.values().filter(|f| &f.audit_id == id) {
                controls.extend(finding.controls.iter().copied());
            }
            clauses.sort_unstable();
            clauses.dedup();
            audited.push(Audited {
                clauses,
                controls,
                audit_id: id,
                completed_at: done.effective_at,
            });
        }
        let latest = |covers: &dyn Fn(&Audited) -> bool| {
            audited
                .iter()
                .filter(|a| covers(a))
                .max_by_key(|a| a.completed_at)
                .map(|a| (a.audit_id.clone(), a.completed_at))
        };
        let row = |item: String, last: Option<(AuditId, Timestamp)>| CoverageRow {
            item,
            in_last_12_months: last.as_ref().is_some_and(|(_, at)| *at >= year_ago),
            last,
        };
        let mut out: Vec<CoverageRow> = (4..=10u8)
            .map(|clause| {
                row(
                    format!("Clause {clause}"),
                    latest(&|a| a.clauses.contains(&clause)),
                )
            })
            .collect();
        out.extend(
            self.soa()
                .into_iter()
                .filter(|c| c.applicable == Some(true))
                .map(|c| {
                    row(
                        c.control_id.to_string(),
                        latest(&|a| a.controls.contains(&c.control_id)),
                    )
                }),
        );
        out
    }

    /// The certification body's audits, and the three-year cycle they make: from the latest
    /// certification (stage 2 or recertification, certified), surveillance audits are due
    /// within 1 and 2 years and recertification within 3 (when the certificate expires).
    pub fn certification_cycle(&self) -> Table {
        let s = self.state;
        let mut rows = Table::new();
        for (id, a) in &s.external_audits {
            rows.insert(
                id.0.clone(),
                vec![
                    ("kind", a.kind.name().to_string()),
                    ("body", a.body.clone()),
                    ("dates", format!("{} to {}", a.start, a.end)),
                    ("major_nonconformities", a.major_nonconformities.to_string()),
                    ("minor_nonconformities", a.minor_nonconformities.to_string()),
                    ("certified", a.certified.to_string()),
                    (
                        "nonconformities_recorded",
                        format!(
                            "{} of {}",
                            s.findings
                                .values()
                                .filter(|f| &f.audit_id == id
                                    && matches!(
                                        f.grade,
                                        FindingGrade::MajorNonconformity
                                            | FindingGrade::MinorNonconformity
                                    ))
                                .count(),
                            u64::from(a.major_nonconformities) + u64::from(a.minor_nonconformities)
                        ),
                    ),
                    ("status", "held".to_string()),
                    ("due", String::new()),
                ],
            );
        }
        let certified = s
            .external_audits
            .iter()
            .filter(|(_, a)| {
                a.certified
                    && matches!(
                        a.kind,
                        ExternalAuditKind::Stage2 | ExternalAuditKind::Recertification
                    )
            })
            .max_by_key(|(_, a)| a.end);
        let Some((cert_id, cert)) = certified else {
            rows.insert(
                "cycle".into(),
                vec![
                    ("kind", "certification".into()),
                    ("status", "not certified".into()),
                    ("due", String::new()),
                ],
            );
            return rows;
        };
        let after: Vec<(&AuditId, &crate::state::ExternalAudit)> = {
            let mut v: Vec<_> = s
                .external_audits
                .iter()
                .filter(|(_, a)| a.start > cert.end)
                .collect();
            v.sort_by_key(|(_, a)| a.end);
            v
        };
        let surveillance: Vec<&AuditId> = after
            .iter()
            .filter(|(_, a)| a.kind == ExternalAuditKind::Surveillance)
            .map(|(id, _)| *id)
            .collect();
        let recert = after
            .iter()
            .find(|(_, a)| a.kind == ExternalAuditKind::Recertification)
            .map(|(id, _)| *id);
        let step = |label: &str, years: i64, held: Option<&AuditId>| {
            let due = cert.end.plus_days(365 * years);
            let status = match held {
                Some(id) => format!("held ({id})"),
                None if due < self.now => "overdue".into(),
                None => "due".into(),
            };
            (
                format!("cycle: {label}"),
                vec![
                    ("kind", label.to_string()),
                    ("body", cert.body.clone()),
                    ("status", status),
                    ("due", due.to_string()),
                ],
            )
        };
        for (label, years, held) in [
            ("surveillance 1", 1, surveillance.first().copied()),
            ("surveillance 2", 2, surveillance.get(1).copied()),
            ("recertification", 3, recert),
        ] {
            let (id, cells) = step(label, years, held);
            rows.insert(id, cells);
        }
        rows.insert(
            "cycle: certificate".into(),
            vec![
                ("kind", "certificate".into()),
                ("body", cert.body.clone()),
                ("status", format!("granted by {cert_id}")),
                ("due", format!("expires {}", cert.end.plus_days(365 * 3))),
            ],
        );
        rows
    }

    /// Management reviews with the mandatory inputs and outputs they missed.
    pub fn management_reviews(&self) -> Vec<ReviewRow> {
        self.state
            .reviews
            .iter()
            .map(|(id, r)| ReviewRow {
                review_id: id.clone(),
                held_at: r.held.effective_at,
                inputs_missing: ReviewInput::ALL
                    .iter()
                    .filter(|(i, _)| !r.inputs.contains(i))
                    .map(|(_, name)| *name)
                    .collect(),
                outputs_missing: ReviewOutput::ALL
                    .iter()
                    .filter(|(o, _)| !r.decisions.iter().any(|(d, _)| d == o))
                    .map(|(_, name)| *name)
                    .collect(),
                attendees_missing: attendees_missing(&r.attendees),
                inputs_without_reference: ReviewInput::ALL
                    .iter()
                    .filter(|(i, _)| r.inputs.contains(i) && !r.references.contains_key(i))
                    .map(|(_, name)| *name)
                    .collect(),
                seq: r.held.seq,
            })
            .collect()
    }

    /// The seed's KPIs, computed from the state at `now`.
    pub fn kpis(&self) -> Vec<Kpi> {
        let s = self.state;
        let pct = |num: usize, den: usize| {
            if den == 0 {
                "n/a".to_owned()
            } else {
                format!("{:.1}%", 100.0 * num as f64 / den as f64)
            }
        };
        // Near misses harmed nothing: counted apart.
        let incidents = s.incidents.values().filter(|i| !i.near_miss).count();
        let near_misses = s.incidents.len() - incidents;
        let high = s
            .incidents
            .values()
            .filter(|i| !i.near_miss && i.severity >= Severity::High)
            .count();
        // The typed records when there are any; evidence passed/failed for the controls
        // otherwise (docs/KPIS.md).
        let vuln = if s.vulnerabilities.is_empty() {
            self.evidence_for(&["A.8.8"])
        } else {
            let judged: Vec<_> = s
                .vulnerabilities
                .values()
                .filter(|v| self.past_due(v.due) || self.remediated(v).is_some())
                .collect();
            let on_time = judged
                .iter()
                .filter(|v| self.remediated(v).is_some_and(|r| done_on_time(r, v.due)))
                .count() as u64;
            (on_time, judged.len() as u64 - on_time)
        };
        let patch = if s.patch_compliance.is_empty() {
            self.evidence_for(&["A.8.8", "A.8.19"])
        } else {
            s.patch_compliance.values().fold((0, 0), |(c, n), p| {
                (
                    c + u64::from(p.devices_compliant),
                    n + u64::from(p.devices_total - p.devices_compliant),
                )
            })
        };
        let access = if s.access_reviews.is_empty() {
            self.evidence_for(&["A.5.15", "A.5.18", "A.8.2"])
        } else {
            let due: Vec<_> = s
                .access_reviews
                .values()
                .filter(|r| self.past_due(r.due) || self.completed(r).is_some())
                .collect();
            let done = due.iter().filter(|r| self.completed(r).is_some()).count() as u64;
            (done, due.len() as u64 - done)
        };
        let findings_needing_action: Vec<_> = s
            .findings
            .iter()
            .filter(|(_, f)| {
                matches!(
                    f.grade,
                    FindingGrade::MajorNonconformity | FindingGrade::MinorNonconformity
                )
            })
            .collect();
        let closed_findings = findings_needing_action
            .iter()
            .filter(|(id, _)| {
                s.actions.values().any(|a| {
                    &a.finding_id == *id
                        && matches!(a.status, ActionStatus::Closed | ActionStatus::Verified)
                })
            })
            .count();
        let treated = s
            .risks
            .values()
            .filter(|r| r.status != RiskStatus::Identified && r.status != RiskStatus::Assessed)
            .count();
        let trained = s.training.values().filter(|t| t.completed).count();
        vec![
            Kpi {
                name: "Number and severity of security incidents",
                value: if near_misses == 0 {
                    format!("{incidents} ({high} high or critical)")
                } else {
                    format!("{incidents} ({high} high or critical); {near_misses} near misses")
                },
            },
            Kpi {
                name: "Vulnerability remediation SLA compliance",
                value: pct(vuln.0 as usize, (vuln.0 + vuln.1) as usize),
            },
            Kpi {
                name: "Security awareness training completion rate",
                value: pct(trained, s.training.len()),
            },
            Kpi {
                name: "Access review completion rate",
                value: pct(access.0 as usize, (access.0 + access.1) as usize),
            },
            Kpi {
                name: "Audit finding closure rate",
                value: pct(closed_findings, findings_needing_action.len()),
            },
            Kpi {
                name: "Risk treatment plan progress",
                value: pct(treated, s.risks.len()),
            },
            Kpi {
                name: "Patch compliance percentage",
                value: pct(patch.0 as usize, (patch.0 + patch.1) as usize),
            },
        ]
    }

    /// When a vulnerability was remediated, if by the query time.
    fn remediated(&self, v: &Vulnerability) -> Option<Timestamp> {
        v.remediated.filter(|r| *r <= self.now)
    }

    /// When an access review was completed, if by the query time.
    fn completed(&self, r: &AccessReview) -> Option<Timestamp> {
        r.completed.filter(|c| *c <= self.now)
    }

    /// Whether a deadline's day has ended by the query time.
    fn past_due(&self, due: Timestamp) -> bool {
        self.now.day_number() > due.day_number()
    }

    /// `done`, `done late`, `overdue` or `open`: a deadline judged at the query time, by days
    /// (done on the due day is on time; not done is overdue once that day has ended).
    fn deadline_status(&self, due: Timestamp, done: Option<Timestamp>) -> &'static str {
        match done {
            Some(d) if done_on_time(d, due) => "done",
            Some(_) => "done late",
            None if self.past_due(due) => "overdue",
            None => "open",
        }
    }

    fn evidence_for(&self, ids: &[&str]) -> (u64, u64) {
        ids.iter()
            .filter_map(|id| ControlId::parse(id).ok())
            .filter_map(|c| self.state.evidence.get(&c))
            .fold((0, 0), |(p, f), e| (p + e.passed, f + e.failed))
    }

    /// The seed's stage 1, stage 2 and surveillance checklists, each item judged from state.
    pub fn readiness(&self) -> Vec<ReadinessItem> {
        crate::readiness::items(self)
    }

    /// Every register as tables of named cells, for diffs and plain-text rendering.
    pub fn tables(&self) -> Vec<(&'static str, Table)> {
        REGISTER_NAMES
            .iter()
            .filter_map(|name| Some((*name, self.table(name)?)))
            .collect()
    }

    /// One register as a table of named cells (None for a name not in [`REGISTER_NAMES`]):
    /// only that register is computed.
    pub fn table(&self, name: &str) -> Option<Table> {
        let s = self.state;
        let opt = |o: Option<String>| o.unwrap_or_default();
        let score = |p: &Option<(Likelihood, Impact, Score, Band)>| {
            opt(p.map(|(l, i, s, b)| format!("{}x{}={} {}", l.get(), i.get(), s.get(), b.name())))
        };
        let ids = |c: &[ControlId]| {
            c.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        Some(match name {
            "risk_register" => self
                .risk_register()
                .into_iter()
                .map(|r| {
                    (
                        r.risk_id.0.clone(),
                        vec![
                            ("asset", r.asset),
                            ("threat", r.threat),
                            ("owner", r.owner),
                            ("inherent", score(&r.inherent)),
                            ("residual", score(&r.residual)),
                            ("treatment", opt(r.treatment.map(|t| t.name().to_owned()))),
                            ("controls", ids(&r.controls)),
                            ("status", format!("{:?}", r.status)),
                            (
                                "history",
                                format!(
                                    "{:?}",
                                    r.history.iter().map(|h| h.1.get()).collect::<Vec<_>>()
                                ),
                            ),
                            ("version", r.version.to_string()),
                        ],
                    )
                })
                .collect(),
            "soa" => self
                .soa()
                .into_iter()
                .map(|r| {
                    (
                        r.control_id.to_string(),
                        vec![
                            ("applicable", opt(r.applicable.map(|a| a.to_string()))),
                            ("justification", r.justification),
                            ("implementation", r.implementation),
                            (
                                "implementation_status",
                                opt(r.implementation_status.map(|s| s.name().to_owned())),
                            ),
                            ("status", format!("{:?}", r.status)),
                            (
                                "approval",
                                opt(r.approval.map(|(v, seq)| format!("{v} @{seq}"))),
                            ),
                            ("version", r.version.to_string()),
                        ],
                    )
                })
                .collect(),
            "corrective_actions" => self
                .corrective_actions()
                .into_iter()
                .map(|a| {
                    (
                        a.action_id.0.clone(),
                        vec![
                            ("finding", a.finding_id.0),
                            ("grade", opt(a.grade.map(|g| g.name().to_owned()))),
                            ("status", a.status.name().to_owned()),
                            (
                                "root_cause_due",
                                opt(a.root_cause_due.map(|d| d.to_string())),
                            ),
                            ("action_due", opt(a.action_due.map(|d| d.to_string()))),
                            ("overdue", a.overdue.join(" ")),
                            ("version", a.version.to_string()),
                        ],
                    )
                })
                .collect(),
            "evidence" => self
                .evidence()
                .into_iter()
                .map(|e| {
                    (
                        e.control_id.to_string(),
                        vec![
                            ("count", e.count.to_string()),
                            ("passed", e.passed.to_string()),
                            ("failed", e.failed.to_string()),
                            (
                                "latest",
                                opt(e.latest.map(|(id, _, at, _)| format!("{id} {at}"))),
                            ),
                            ("coverage_3_months", format!("{:.2}", e.coverage_3_months)),
                        ],
                    )
                })
                .collect(),
            "audits" => s
                .audits
                .iter()
                .map(|(id, a)| {
                    (
                        id.0.clone(),
                        vec![
                            ("scope", a.scope.clone()),
                            ("auditor", a.auditor.clone()),
                            ("dates", format!("{} to {}", a.start, a.end)),
                            (
                                "areas",
                                a.areas
                                    .iter()
                                    .map(|x| x.area.clone())
                                    .collect::<Vec<_>>()
                                    .join("; "),
                            ),
                            ("completed", a.completed.is_some().to_string()),
                            (
                                "evidence_received",
                                format!(
                                    "{} of {}",
                                    a.received.len(),
                                    a.areas
                                        .iter()
                                        .map(|x| x.evidence_requested.len())
                                        .sum::<usize>()
                                ),
                            ),
                            ("evidence_outstanding", outstanding_evidence(a).join("; ")),
                        ],
                    )
                })
                .collect(),
            "findings" => s
                .findings
                .iter()
                .map(|(id, f)| {
                    (
                        id.0.clone(),
                        vec![
                            ("audit", f.audit_id.0.clone()),
                            ("grade", f.grade.name().to_owned()),
                            ("area", f.area.clone()),
                            ("controls", ids(&f.controls)),
                        ],
                    )
                })
                .collect(),
            "audit_coverage" => self
                .audit_coverage()
                .into_iter()
                .map(|c| {
                    (
                        c.item,
                        vec![
                            (
                                "audited_in_last_12_months",
                                if c.in_last_12_months { "yes" } else { "no" }.to_string(),
                            ),
                            (
                                "last_audit",
                                opt(c.last.as_ref().map(|(id, _)| id.0.clone())),
                            ),
                            ("completed_at", opt(c.last.map(|(_, at)| at.to_string()))),
                        ],
                    )
                })
                .collect(),
            "assets" => s
                .assets
                .iter()
                .map(|(id, a)| {
                    // The asset-based approach: which risks name this asset (by id or name).
                    let named: Vec<_> = s
                        .risks
                        .iter()
                        .filter(|(_, r)| r.asset == id.0 || r.asset == a.name)
                        .collect();
                    let risks: Vec<&str> = named.iter().map(|(rid, _)| rid.0.as_str()).collect();
                    // A retired asset whose risks are still open: the register is stale.
                    let open_on_retired: Vec<&str> = named
                        .iter()
                        .filter(|(_, r)| a.retired && r.status != RiskStatus::Closed)
                        .map(|(rid, _)| rid.0.as_str())
                        .collect();
                    (
                        id.0.clone(),
                        vec![
                            ("name", a.name.clone()),
                            ("type", a.asset_type.clone()),
                            ("owner", a.owner.clone()),
                            ("classification", a.classification.clone()),
                            ("location", a.location.clone()),
                            (
                                "status",
                                if a.retired { "retired" } else { "in use" }.to_string(),
                            ),
                            ("risks", risks.join(" ")),
                            ("open_risks_on_retired_asset", open_on_retired.join(" ")),
                            (
                                "risk_assessed",
                                if risks.is_empty() { "no" } else { "yes" }.to_string(),
                            ),
                        ],
                    )
                })
                .collect(),
            "scope" => s
                .scope
                .iter()
                .flat_map(|(scope, meta)| {
                    let list = |v: &[String]| v.join("; ");
                    [
                        ("organization", scope.organization.clone()),
                        ("scope_statement", scope.scope_statement.clone()),
                        ("locations", list(&scope.locations)),
                        ("business_processes", list(&scope.business_processes)),
                        ("information_assets", list(&scope.information_assets)),
                        ("technology", list(&scope.technology)),
                        ("excluded", list(&scope.excluded)),
                        (
                            "exclusion_justification",
                            scope.exclusion_justification.clone(),
                        ),
                        ("interfaces", list(&scope.interfaces)),
                    ]
                    .into_iter()
                    .map(move |(field, value)| {
                        (
                            field.to_string(),
                            vec![
                                ("value", value),
                                ("defined_by", meta.subject.0.clone()),
                                ("entry", meta.seq.to_string()),
                            ],
                        )
                    })
                })
                .collect(),
            "policies" => s
                .policies
                .iter()
                .map(|(id, p)| {
                    (
                        id.0.clone(),
                        vec![
                            ("title", p.title.clone()),
                            ("kind", format!("{:?}", p.kind)),
                            ("version", p.version.clone()),
                            ("published", p.published.to_string()),
                            ("approved_by", p.approved.subject.0.clone()),
                            ("approved_at", p.approved.effective_at.to_string()),
                            ("next_review", opt(p.next_review.map(|t| t.to_string()))),
                            (
                                "review_overdue",
                                p.next_review.is_some_and(|t| t < self.now).to_string(),
                            ),
                            ("superseded", p.superseded.join(" ")),
                        ],
                    )
                })
                .collect(),
            "objectives" => s
                .objectives
                .iter()
                .map(|(id, o)| {
                    (
                        id.0.clone(),
                        vec![
                            ("description", o.description.clone()),
                            ("metric", o.metric.clone()),
                            ("target", o.target.clone()),
                            ("set_at", o.set.effective_at.to_string()),
                            ("measurements", o.measurements.len().to_string()),
                            (
                                "latest_value",
                                opt(o.measurements.last().map(|m| m.value.clone())),
                            ),
                            (
                                "measured_at",
                                opt(o
                                    .measurements
                                    .last()
                                    .map(|m| m.measured.effective_at.to_string())),
                            ),
                            (
                                "meets_target",
                                o.measurements
                                    .last()
                                    .and_then(|m| meets_target(&o.target, &m.value))
                                    .map_or(String::new(), |met| {
                                        if met { "yes" } else { "no" }.to_string()
                                    }),
                            ),
                        ],
                    )
                })
                .collect(),
            "continuity_tests" => s
                .continuity_tests
                .iter()
                .map(|(id, t)| {
                    (
                        id.0.clone(),
                        vec![
                            ("plan", t.plan.clone()),
                            ("result", format!("{:?}", t.result)),
                            ("controls", ids(&t.controls)),
                            ("held_at", t.held.effective_at.to_string()),
                        ],
                    )
                })
                .collect(),
            "access_reviews" => s
                .access_reviews
                .iter()
                .map(|(id, r)| {
                    (
                        id.0.clone(),
                        vec![
                            ("system", r.system.clone()),
                            ("reviewer", r.reviewer.clone()),
                            ("due", r.due.to_string()),
                            ("completed", opt(self.completed(r).map(|t| t.to_string()))),
                            ("accounts_reviewed", r.accounts_reviewed.to_string()),
                            ("accounts_removed", r.accounts_removed.to_string()),
                            (
                                "status",
                                self.deadline_status(r.due, self.completed(r)).to_string(),
                            ),
                        ],
                    )
                })
                .collect(),
            "vulnerabilities" => s
                .vulnerabilities
                .iter()
                .map(|(id, v)| {
                    let remediated = self.remediated(v);
                    let open_until = remediated.unwrap_or(self.now);
                    (
                        id.0.clone(),
                        vec![
                            ("title", v.title.clone()),
                            ("severity", format!("{:?}", v.severity)),
                            ("asset", opt(v.asset.as_ref().map(|a| a.0.clone()))),
                            ("detected", v.detected.to_string()),
                            ("due", v.due.to_string()),
                            ("remediated", opt(remediated.map(|t| t.to_string()))),
                            (
                                "days_open",
                                (open_until.day_number() - v.detected.day_number())
                                    .max(0)
                                    .to_string(),
                            ),
                            (
                                "status",
                                self.deadline_status(v.due, remediated).to_string(),
                            ),
                        ],
                    )
                })
                .collect(),
            "patch_compliance" => s
                .patch_compliance
                .iter()
                .map(|(scope, p)| {
                    (
                        scope.clone(),
                        vec![
                            ("devices_total", p.devices_total.to_string()),
                            ("devices_compliant", p.devices_compliant.to_string()),
                            (
                                "compliance",
                                format!(
                                    "{:.1}%",
                                    100.0 * f64::from(p.devices_compliant)
                                        / f64::from(p.devices_total.max(1))
                                ),
                            ),
                            ("measured_at", p.measured.effective_at.to_string()),
                        ],
                    )
                })
                .collect(),
            "incidents" => s
                .incidents
                .iter()
                .map(|(id, i)| {
                    (
                        id.0.clone(),
                        vec![
                            ("title", i.title.clone()),
                            ("severity", format!("{:?}", i.severity)),
                            (
                                "kind",
                                if i.near_miss { "near miss" } else { "incident" }.to_string(),
                            ),
                            ("nonconformity", i.nonconformity.to_string()),
                            ("detected_at", opt(i.detected_at.map(|t| t.to_string()))),
                            ("recorded_at", i.recorded.recorded_at.to_string()),
                            (
                                "closed_at",
                                opt(i.closed.as_ref().map(|(_, m)| m.effective_at.to_string())),
                            ),
                            ("closed", i.closed.is_some().to_string()),
                            ("assets", i.assets.join("; ")),
                            ("controls", ids(&i.controls)),
                            (
                                "corrective_actions",
                                i.corrective_actions
                                    .iter()
                                    .map(|a| {
                                        let status =
                                            s.actions.get(a).map_or("unknown", |x| x.status.name());
                                        format!("{a} ({status})")
                                    })
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ),
                        ],
                    )
                })
                .collect(),
            "training" => s
                .training
                .iter()
                .map(|(id, t)| {
                    (
                        id.0.clone(),
                        vec![
                            ("person", t.person.clone()),
                            ("course", t.course.clone()),
                            ("campaign", t.campaign.clone()),
                            ("completed", t.completed.to_string()),
                            ("due", opt(t.due.map(|d| d.to_string()))),
                            (
                                "overdue",
                                (!t.completed && t.due.is_some_and(|d| d < self.now)).to_string(),
                            ),
                        ],
                    )
                })
                .collect(),
            "suppliers" => s
                .suppliers
                .iter()
                .map(|(id, x)| {
                    (
                        id.0.clone(),
                        vec![
                            ("name", x.name.clone()),
                            ("result", format!("{:?}", x.result)),
                            ("criticality", opt(x.criticality.map(|c| format!("{c:?}")))),
                            ("assessments", x.assessments.to_string()),
                            ("last_assessed", x.assessed.effective_at.to_string()),
                            (
                                "next_assessment",
                                opt(x.next_assessment.map(|t| t.to_string())),
                            ),
                            (
                                "assessment_overdue",
                                x.next_assessment.is_some_and(|t| t < self.now).to_string(),
                            ),
                        ],
                    )
                })
                .collect(),
            "management_reviews" => self
                .management_reviews()
                .into_iter()
                .map(|r| {
                    (
                        r.review_id.0.clone(),
                        vec![
                            ("held_at", r.held_at.to_string()),
                            ("inputs_missing", r.inputs_missing.join("; ")),
                            ("outputs_missing", r.outputs_missing.join("; ")),
                            ("required_attendees_missing", r.attendees_missing.join("; ")),
                            (
                                "inputs_without_reference",
                                r.inputs_without_reference.join("; "),
                            ),
                        ],
                    )
                })
                .collect(),
            "certification_cycle" => self.certification_cycle(),
            "legal_requirements" => s
                .legal
                .iter()
                .map(|(id, r)| {
                    let review = r.review.as_ref();
                    (
                        id.0.clone(),
                        vec![
                            ("title", r.title.clone()),
                            ("jurisdiction", r.jurisdiction.clone()),
                            ("owner", r.owner.clone()),
                            ("controls", ids(&r.controls)),
                            ("compliance", opt(review.map(|v| format!("{:?}", v.result)))),
                            (
                                "reviewed_at",
                                opt(review.map(|v| v.reviewed.effective_at.to_string())),
                            ),
                            (
                                "next_review",
                                opt(review.and_then(|v| v.next_review).map(|t| t.to_string())),
                            ),
                            (
                                "review_overdue",
                                match review {
                                    None => "never reviewed".to_string(),
                                    Some(v) => {
                                        v.next_review.is_some_and(|t| t < self.now).to_string()
                                    }
                                },
                            ),
                        ],
                    )
                })
                .collect(),
            "review_actions" => {
                // Reviews in the order held: each decision is reported at the next one.
                let mut held: Vec<(&ReviewId, &crate::state::Review)> = s.reviews.iter().collect();
                held.sort_by_key(|(_, r)| r.held.effective_at);
                let mut rows = Table::new();
                for (n, (id, review)) in held.iter().enumerate() {
                    let next = held.get(n + 1);
                    for (k, (output, decision)) in review.decisions.iter().enumerate() {
                        let number = k as u32 + 1;
                        let closure = review.closed.get(&number);
                        let title = ReviewOutput::ALL
                            .iter()
                            .find(|(o, _)| o == output)
                            .map_or("", |(_, t)| *t);
                        rows.insert(
                            format!("{} #{number}", id.0),
                            vec![
                                ("output", title.to_string()),
                                ("decision", decision.clone()),
                                (
                                    "status",
                                    if closure.is_some() { "Closed" } else { "Open" }.to_string(),
                                ),
                                ("resolution", opt(closure.map(|c| c.resolution.clone()))),
                                (
                                    "closed_at",
                                    opt(closure.map(|c| c.closed.effective_at.to_string())),
                                ),
                                ("next_review", opt(next.map(|(nid, _)| nid.0.clone()))),
                                (
                                    "reported_at_next_review",
                                    match next {
                                        Some((_, r)) => {
                                            if r.inputs.contains(&ReviewInput::PreviousActions) {
                                                "yes"
                                            } else {
                                                "no"
                                            }
                                        }
                                        None => "",
                                    }
                                    .to_string(),
                                ),
                            ],
                        );
                    }
                }
                rows
            }
            "kpis" => self
                .kpis()
                .into_iter()
                .map(|k| (k.name.to_owned(), vec![("value", k.value)]))
                .collect(),
            "readiness" => self
                .readiness()
                .into_iter()
                .map(|r| {
                    (
                        format!("{}: {}", r.stage, r.item),
                        vec![("status", format!("{:?}", r.status)), ("reason", r.reason)],
                    )
                })
                .collect(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod natural_order_tests {
    use super::natural_order;

    #[test]
    fn control_ids_sort_in_the_standards_order() {
        let mut ids = vec!["A.5.10", "A.8.1", "A.5.2", "A.5.1", "A.6.8", "A.5.37"];
        ids.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            ids,
            vec!["A.5.1", "A.5.2", "A.5.10", "A.5.37", "A.6.8", "A.8.1"]
        );
    }

    #[test]
    fn ids_that_differ_only_in_leading_zeros_still_have_an_order() {
        assert!(natural_order("R-01", "R-1").is_ne());
        assert!(natural_order("R-9", "R-10").is_lt());
    }
}
