//! The domain's vocabulary: newtypes for ids, scores and times, roles, and the `Event` enum
//! (one variant per ISMS action). Nothing here knows protobuf; `wire` translates.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{catalog::ControlId, error::Error};

/// A point in time, unix microseconds UTC. Used for both transaction time (`recorded_at`)
/// and valid time (`effective_at`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// One day in microseconds.
    pub const DAY: i64 = 86_400_000_000;

    /// Midnight UTC of a calendar date.
    pub fn from_date(year: i64, month: u32, day: u32) -> Self {
        Self(days_from_civil(year, month, day) * Self::DAY)
    }

    /// The earliest time the ledger takes: 1970-01-01T00:00:00Z.
    pub const EARLIEST: Timestamp = Timestamp(0);
    /// The latest time the ledger takes: 9999-12-31T23:59:59.999999Z.
    pub const LATEST: Timestamp = Timestamp(253_402_300_799_999_999);
    /// The window in words, for error messages.
    pub const WINDOW: &'static str = "1970-01-01 to 9999-12-31 (UTC)";

    /// Whether the time lies in the window the ledger takes ([`Self::EARLIEST`] ..=
    /// [`Self::LATEST`]).
    pub fn in_window(self) -> bool {
        (Self::EARLIEST..=Self::LATEST).contains(&self)
    }

    /// Parses `2025-03-10` as midnight UTC. Only real calendar dates from 1970 to 9999 are
    /// taken: `2025-02-30` is `None`, never 2 March.
    pub fn parse_date(s: &str) -> Option<Self> {
        let mut it = s.trim().splitn(3, '-');
        let y: i64 = it.next()?.parse().ok()?;
        let m: u32 = it.next()?.parse().ok()?;
        let d: u32 = it.next()?.parse().ok()?;
        if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
            return None;
        }
        if d == 0 || d > days_in_month(y, m) {
            return None;
        }
        Some(Self::from_date(y, m, d))
    }

    /// This time plus a number of days.
    pub fn plus_days(self, days: i64) -> Self {
        Self(self.0 + days * Self::DAY)
    }

    /// Days since 1970-01-01 (floor).
    pub fn day_number(self) -> i64 {
        self.0.div_euclid(Self::DAY)
    }
}

impl fmt::Display for Timestamp {
    /// `2025-03-10` for midnight, `2025-03-10T14:03:00Z` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.day_number());
        let secs = self.0.rem_euclid(Self::DAY) / 1_000_000;
        if secs == 0 {
            write!(f, "{y:04}-{m:02}-{d:02}")
        } else {
            let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        }
    }
}

/// Rules a record's own counts and dates obey, with no state needed: the wire decoder and the
/// file readers (`isms submit`) both call them, each naming the field its own way. Each returns
/// the rule broken.
pub mod field_rules {
    use super::Timestamp;

    /// An access review's `accounts_removed`.
    pub fn accounts_removed(reviewed: u32, removed: u32) -> Result<(), &'static str> {
        match removed > reviewed {
            true => Err("cannot exceed accounts_reviewed"),
            false => Ok(()),
        }
    }

    /// A vulnerability's `remediated` time.
    pub fn remediated(
        detected: Timestamp,
        remediated: Option<Timestamp>,
    ) -> Result<(), &'static str> {
        match remediated.is_some_and(|r| r < detected) {
            true => Err("a vulnerability cannot be remediated before it was detected"),
            false => Ok(()),
        }
    }

    /// A patch compliance measurement's `devices_total`.
    pub fn devices_total(total: u32) -> Result<(), &'static str> {
        match total == 0 {
            true => Err("must be at least 1"),
            false => Ok(()),
        }
    }

    /// A patch compliance measurement's `devices_compliant`.
    pub fn devices_compliant(total: u32, compliant: u32) -> Result<(), &'static str> {
        match compliant > total {
            true => Err("cannot exceed devices_total"),
            false => Ok(()),
        }
    }
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

// Howard Hinnant's civil calendar algorithms: exact for the proleptic Gregorian calendar and
// small enough that a date library is not worth the dependency.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

macro_rules! string_id {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub String);

        impl $name {
            /// Builds the id, refusing an empty or over-long string (`field` names it in the
            /// error).
            pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
                let raw = raw.trim();
                if raw.is_empty() {
                    return Err(Error::missing(field, "an id must not be empty"));
                }
                if raw.len() > 128 {
                    return Err(Error::malformed(field, "an id must be at most 128 bytes"));
                }
                Ok(Self(raw.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

string_id! {
    /// A risk, `RISK-001`.
    RiskId;
    /// An internal audit, `IA-2025-Q1`.
    AuditId;
    /// An audit finding.
    FindingId;
    /// A corrective action.
    ActionId;
    /// An information asset.
    AssetId;
    /// A piece of evidence.
    EvidenceId;
    /// A management review meeting.
    ReviewId;
    /// A training record.
    TrainingId;
    /// A security incident.
    IncidentId;
    /// A supplier.
    SupplierId;
    /// A policy document.
    PolicyId;
    /// An ISMS objective.
    ObjectiveId;
    /// A business continuity test.
    TestId;
    /// A legal, regulatory or contractual requirement.
    RequirementId;
    /// An access review.
    AccessReviewId;
    /// A technical vulnerability.
    VulnerabilityId;
}

/// Who holds a key: a person or a system (`alice@example.com`, `ci/vuln-scanner`). Duties are
/// separated by subject, because one person may hold several keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject(pub String);

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 32-byte key id (blake3 of the domain tag and the public key).
pub type KeyIdBytes = [u8; 32];

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Enrols and revokes keys, erases artifacts, defines the scope.
    Admin,
    /// Automated systems: may submit evidence only.
    Agent,
    /// Owns risks: identifies, assesses, treats them.
    RiskOwner,
    /// Owns controls: applicability, implementation, evidence, corrective actions.
    ControlOwner,
    /// Plans audits, raises findings, verifies corrective actions.
    Auditor,
    /// Top management: policy, objectives, approvals, risk acceptance, reviews.
    Management,
    /// Reads registers; appends nothing.
    Reader,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Agent,
        Role::RiskOwner,
        Role::ControlOwner,
        Role::Auditor,
        Role::Management,
        Role::Reader,
    ];

    /// The name used in `KeyEnrolled.roles`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::RiskOwner => "risk_owner",
            Role::ControlOwner => "control_owner",
            Role::Auditor => "auditor",
            Role::Management => "management",
            Role::Reader => "reader",
        }
    }

    /// Parses a role name; unknown names are `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name.trim())
    }
}

macro_rules! level {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(u8);

        impl $name {
            /// Accepts 1..=5; otherwise an error naming `field` and the rule.
            pub fn parse(field: &str, raw: u32) -> Result<Self, Error> {
                if !(1..=5).contains(&raw) {
                    return Err(Error::OutOfRange {
                        field: field.to_owned(),
                        rule: "must be 1..=5".to_owned(),
                        got: i64::from(raw),
                    });
                }
                Ok(Self(raw as u8))
            }

            /// 1..=5.
            pub fn get(self) -> u8 {
                self.0
            }
        }
    )*};
}

level! {
    /// Likelihood 1 (rare) ..= 5 (almost certain).
    Likelihood;
    /// Impact 1 (negligible) ..= 5 (critical).
    Impact;
}

/// A risk score, likelihood x impact, 1..=25.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Score(u8);

impl Score {
    /// The score of a likelihood and an impact.
    pub fn of(likelihood: Likelihood, impact: Impact) -> Self {
        Self(likelihood.0 * impact.0)
    }

    /// 1..=25.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The appetite band the score falls in.
    pub fn band(self) -> Band {
        match self.0 {
            0..=4 => Band::Accept,
            5..=14 => Band::Mitigate,
            _ => Band::Escalate,
        }
    }
}

/// The risk appetite bands: accept 1-4, mitigate 5-14, escalate 15-25.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Band {
    /// 1-4: low risk, accept with monitoring.
    Accept,
    /// 5-14: medium risk, implement controls to reduce.
    Mitigate,
    /// 15-25: high or critical risk, immediate action required.
    Escalate,
}

impl Band {
    /// `accept`, `mitigate`, `escalate`.
    pub fn name(self) -> &'static str {
        match self {
            Band::Accept => "accept",
            Band::Mitigate => "mitigate",
            Band::Escalate => "escalate",
        }
    }
}

/// A risk treatment option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Treatment {
    /// Implement controls to reduce likelihood or impact.
    Mitigate,
    /// Insurance or contractual transfer to a third party.
    Transfer,
    /// Remove the activity or asset.
    Avoid,
    /// Accept with documented management approval.
    Accept,
}

impl Treatment {
    /// The seed's name.
    pub fn name(self) -> &'static str {
        match self {
            Treatment::Mitigate => "mitigate",
            Treatment::Transfer => "transfer",
            Treatment::Avoid => "avoid",
            Treatment::Accept => "accept",
        }
    }

    /// Parses the seed's name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Mitigate, Self::Transfer, Self::Avoid, Self::Accept]
            .into_iter()
            .find(|t| t.name() == name.trim())
    }
}

/// The kind of a policy document; some are checked by the certification readiness list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PolicyKind {
    /// The information security policy (clause 5.2).
    InformationSecurity,
    /// The risk assessment methodology (clause 6.1.2).
    RiskMethodology,
    /// Control of documented information (clause 7.5).
    DocumentControl,
    /// Incident management.
    IncidentManagement,
    /// Business continuity.
    BusinessContinuity,
    /// Supplier security.
    SupplierSecurity,
    /// Anything else.
    Other,
}

/// A control's implementation status in the SoA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ImplementationStatus {
    /// Nothing done yet.
    NotStarted,
    /// Planned.
    Planned,
    /// Being implemented.
    InProgress,
    /// Implemented.
    Implemented,
}

impl ImplementationStatus {
    /// `not_started`, `planned`, `in_progress`, `implemented`.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::Planned => "planned",
            Self::InProgress => "in_progress",
            Self::Implemented => "implemented",
        }
    }
}

/// Pass or fail of a check (evidence, supplier assessment, continuity test).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CheckResult {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
}

/// The seed's finding categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FindingGrade {
    /// Requirement not met, significant risk to ISMS effectiveness.
    MajorNonconformity,
    /// Requirement partially met, limited risk.
    MinorNonconformity,
    /// Area for improvement, no requirement breach.
    Observation,
    /// Notably effective implementation.
    PositiveFinding,
}

impl FindingGrade {
    /// The seed's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::MajorNonconformity => "major_nonconformity",
            Self::MinorNonconformity => "minor_nonconformity",
            Self::Observation => "observation",
            Self::PositiveFinding => "positive_finding",
        }
    }
}

/// The audits of the three-year certification cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ExternalAuditKind {
    /// Stage 1: documentation review.
    Stage1,
    /// Stage 2: the certification audit.
    Stage2,
    /// A yearly surveillance audit.
    Surveillance,
    /// The recertification audit before the certificate expires.
    Recertification,
}

impl ExternalAuditKind {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stage1 => "stage_1",
            Self::Stage2 => "stage_2",
            Self::Surveillance => "surveillance",
            Self::Recertification => "recertification",
        }
    }
}

/// Incident severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// The seed's eight mandatory management review inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReviewInput {
    /// Status of actions from previous management reviews.
    PreviousActions,
    /// Changes in external and internal issues relevant to the ISMS.
    IssueChanges,
    /// Information security performance (metrics and KPIs).
    Performance,
    /// Audit results (internal and external).
    AuditResults,
    /// Incident trends and nonconformities.
    IncidentsNonconformities,
    /// Risk assessment results and risk treatment plan status.
    RiskResults,
    /// Interested party feedback.
    InterestedPartyFeedback,
    /// Opportunities for continual improvement.
    ImprovementOpportunities,
}

impl ReviewInput {
    /// Every mandatory input, with the seed's wording.
    pub const ALL: [(ReviewInput, &'static str); 8] = [
        (
            Self::PreviousActions,
            "Status of actions from previous management reviews",
        ),
        (
            Self::IssueChanges,
            "Changes in external and internal issues relevant to the ISMS",
        ),
        (
            Self::Performance,
            "Information security performance (metrics and KPIs)",
        ),
        (Self::AuditResults, "Audit results (internal and external)"),
        (
            Self::IncidentsNonconformities,
            "Incident trends and nonconformities",
        ),
        (
            Self::RiskResults,
            "Risk assessment results and risk treatment plan status",
        ),
        (Self::InterestedPartyFeedback, "Interested party feedback"),
        (
            Self::ImprovementOpportunities,
            "Opportunities for continual improvement",
        ),
    ];
}

/// The seed's four mandatory management review outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReviewOutput {
    /// Decisions on continual improvement opportunities.
    Improvement,
    /// Decisions on changes needed to the ISMS.
    IsmsChanges,
    /// Resource allocation decisions.
    Resources,
    /// Updated risk acceptance decisions.
    RiskAcceptance,
}

impl ReviewOutput {
    /// Every mandatory output, with the seed's wording.
    pub const ALL: [(ReviewOutput, &'static str); 4] = [
        (
            Self::Improvement,
            "Decisions on continual improvement opportunities",
        ),
        (Self::IsmsChanges, "Decisions on changes needed to the ISMS"),
        (Self::Resources, "Resource allocation decisions"),
        (Self::RiskAcceptance, "Updated risk acceptance decisions"),
    ];
}

/// A key as enrolled: public key, subject, roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEnrolment {
    /// The ed25519 public key.
    pub public_key: [u8; 32],
    /// Who holds it.
    pub subject: Subject,
    /// What it may do.
    pub roles: Vec<Role>,
}

/// An artifact an event refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// blake3 of the content.
    pub blake3: [u8; 32],
    /// Size in bytes.
    pub size: u64,
    /// `application/pdf`.
    pub media_type: String,
    /// A file name.
    pub name: String,
}

/// A decoded `EventBody`: the common fields and the domain event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The client's idempotency key.
    pub event_id: String,
    /// When the thing happened.
    pub effective_at: Timestamp,
    /// Optimistic concurrency on the event's entity.
    pub expected_version: Option<u64>,
    /// Artifacts referred to.
    pub artifacts: Vec<ArtifactRef>,
    /// What happened.
    pub event: Event,
}

/// One ISMS action. Each variant's fields follow the seed's YAML.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Field names are the seed's; the proto file documents them.
pub enum Event {
    /// Entry 0: the ledger's first admins.
    Genesis {
        name: String,
        admins: Vec<KeyEnrolment>,
    },
    /// A key enrolled by an admin.
    KeyEnrolled(KeyEnrolment),
    /// A key revoked from this entry on.
    KeyRevoked {
        key_id: KeyIdBytes,
        reason: String,
    },
    /// An artifact's content erased (the hash stays in the chain).
    ArtifactErased {
        blake3: [u8; 32],
        reason: String,
    },
    /// The ledger's checkpoint key handed over to a new key (the signatures are the ledger's
    /// business; they are kept so the event re-encodes to what was signed).
    LedgerKeyRotated {
        new_public_key: [u8; 32],
        old_key_signature: Vec<u8>,
        new_key_signature: Vec<u8>,
        reason: String,
    },
    ScopeDefined(Scope),
    PolicyApproved {
        policy_id: PolicyId,
        title: String,
        kind: PolicyKind,
        version: String,
        published: bool,
        next_review: Option<Timestamp>,
    },
    ObjectiveSet {
        objective_id: ObjectiveId,
        description: String,
        metric: String,
        target: String,
    },
    ObjectiveMeasured {
        objective_id: ObjectiveId,
        value: String,
        note: String,
    },
    AssetRegistered {
        asset_id: AssetId,
        name: String,
        asset_type: String,
        owner: String,
        classification: String,
        location: String,
        retired: bool,
    },
    RiskIdentified {
        risk_id: RiskId,
        asset: String,
        threat: String,
        vulnerability: String,
        risk_owner: String,
    },
    RiskAssessed {
        risk_id: RiskId,
        likelihood: Likelihood,
        impact: Impact,
    },
    RiskRescored {
        risk_id: RiskId,
        likelihood: Likelihood,
        impact: Impact,
        reason: String,
    },
    RiskTreatmentDecided {
        risk_id: RiskId,
        treatment: Treatment,
        controls: Vec<ControlId>,
        plan: String,
    },
    RiskAccepted {
        risk_id: RiskId,
        justification: String,
    },
    RiskClosed {
        risk_id: RiskId,
        reason: String,
    },
    /// The asset, threat, vulnerability or owner of an identified risk changed.
    RiskDetailsChanged {
        risk_id: RiskId,
        asset: String,
        threat: String,
        vulnerability: String,
        risk_owner: String,
        reason: String,
    },
    ControlApplicabilitySet {
        control_id: ControlId,
        applicable: bool,
        justification: String,
        implementation: String,
        owner: String,
    },
    ControlApproved {
        /// Empty: every control assessed so far.
        control_ids: Vec<ControlId>,
        soa_version: String,
    },
    ImplementationStatusChanged {
        control_id: ControlId,
        status: ImplementationStatus,
        note: String,
    },
    EvidenceSubmitted {
        evidence_id: EvidenceId,
        controls: Vec<ControlId>,
        artifact_blake3: Option<[u8; 32]>,
        result: CheckResult,
        collected_at: Timestamp,
        summary: String,
    },
    AuditPlanned {
        audit_id: AuditId,
        scope: String,
        auditor: String,
        start: Timestamp,
        end: Timestamp,
        areas: Vec<AuditArea>,
    },
    AuditCompleted {
        audit_id: AuditId,
        summary: String,
    },
    FindingRaised {
        finding_id: FindingId,
        audit_id: AuditId,
        grade: FindingGrade,
        area: String,
        description: String,
        controls: Vec<ControlId>,
        auditee: String,
    },
    CorrectiveActionOpened {
        action_id: ActionId,
        finding_id: FindingId,
        description: String,
        owner: String,
    },
    RootCauseRecorded {
        action_id: ActionId,
        root_cause: String,
    },
    CorrectiveActionClosed {
        action_id: ActionId,
        resolution: String,
    },
    CorrectiveActionVerified {
        action_id: ActionId,
        effective: bool,
        note: String,
    },
    ReviewDecisionClosed {
        review_id: ReviewId,
        decision: u32,
        resolution: String,
    },
    LegalRequirementRecorded {
        requirement_id: RequirementId,
        title: String,
        jurisdiction: String,
        owner: String,
        controls: Vec<ControlId>,
    },
    ComplianceReviewed {
        requirement_id: RequirementId,
        result: CheckResult,
        note: String,
        next_review: Option<Timestamp>,
    },
    ExternalAuditHeld {
        audit_id: AuditId,
        kind: ExternalAuditKind,
        body: String,
        start: Timestamp,
        end: Timestamp,
        major_nonconformities: u32,
        minor_nonconformities: u32,
        certified: bool,
        summary: String,
    },
    ManagementReviewHeld {
        review_id: ReviewId,
        attendees: Vec<String>,
        inputs_covered: Vec<ReviewInput>,
        decisions: Vec<(ReviewOutput, String)>,
        /// Where covered inputs were presented.
        references: Vec<InputReference>,
    },
    TrainingRecorded {
        training_id: TrainingId,
        person: String,
        course: String,
        completed: bool,
        campaign: String,
        due: Option<Timestamp>,
    },
    IncidentRecorded {
        incident_id: IncidentId,
        title: String,
        severity: Severity,
        controls: Vec<ControlId>,
        detected_at: Option<Timestamp>,
        assets: Vec<String>,
        nonconformity: bool,
        near_miss: bool,
    },
    IncidentClosed {
        incident_id: IncidentId,
        resolution: String,
        corrective_actions: Vec<ActionId>,
    },
    SupplierAssessed {
        supplier_id: SupplierId,
        name: String,
        result: CheckResult,
        notes: String,
        criticality: Option<Severity>,
        next_assessment: Option<Timestamp>,
    },
    ContinuityTestHeld {
        test_id: TestId,
        plan: String,
        result: CheckResult,
        controls: Vec<ControlId>,
    },
    AccessReviewRecorded {
        review_id: AccessReviewId,
        system: String,
        reviewer: String,
        due: Timestamp,
        completed: Option<Timestamp>,
        accounts_reviewed: u32,
        accounts_removed: u32,
    },
    VulnerabilityRecorded {
        vulnerability_id: VulnerabilityId,
        title: String,
        severity: Severity,
        asset: Option<AssetId>,
        detected: Timestamp,
        remediated: Option<Timestamp>,
        due: Option<Timestamp>,
    },
    PatchComplianceMeasured {
        scope: String,
        devices_total: u32,
        devices_compliant: u32,
    },
    AuditEvidenceReceived {
        audit_id: AuditId,
        area: String,
        item: String,
        reference: String,
    },
}

/// The seed's `isms_scope.template`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Scope {
    pub organization: String,
    pub scope_statement: String,
    pub locations: Vec<String>,
    pub business_processes: Vec<String>,
    pub information_assets: Vec<String>,
    pub technology: Vec<String>,
    pub excluded: Vec<String>,
    pub exclusion_justification: String,
    pub interfaces: Vec<String>,
}

/// Where a management review's input was presented ("Q3 KPI report", "risk register as of
/// 2025-09-30").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputReference {
    /// The mandatory input.
    pub input: ReviewInput,
    /// The document, export or minutes that covered it.
    pub reference: String,
}

/// One area of an audit plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditArea {
    /// `Access Control (A.5.15)`.
    pub area: String,
    /// `IT Security Team`.
    pub auditee: String,
    /// What the auditor asked for.
    pub evidence_requested: Vec<String>,
}

/// Every event kind, for role tables and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum EventKind {
    Genesis,
    KeyEnrolled,
    KeyRevoked,
    ArtifactErased,
    LedgerKeyRotated,
    ScopeDefined,
    PolicyApproved,
    ObjectiveSet,
    ObjectiveMeasured,
    AssetRegistered,
    RiskIdentified,
    RiskAssessed,
    RiskRescored,
    RiskTreatmentDecided,
    RiskAccepted,
    RiskClosed,
    RiskDetailsChanged,
    ControlApplicabilitySet,
    ControlApproved,
    ImplementationStatusChanged,
    EvidenceSubmitted,
    AuditPlanned,
    AuditCompleted,
    FindingRaised,
    CorrectiveActionOpened,
    RootCauseRecorded,
    CorrectiveActionClosed,
    CorrectiveActionVerified,
    ManagementReviewHeld,
    TrainingRecorded,
    IncidentRecorded,
    IncidentClosed,
    SupplierAssessed,
    ContinuityTestHeld,
    ReviewDecisionClosed,
    ExternalAuditHeld,
    LegalRequirementRecorded,
    ComplianceReviewed,
    AccessReviewRecorded,
    VulnerabilityRecorded,
    PatchComplianceMeasured,
    AuditEvidenceReceived,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 42] = [
        EventKind::Genesis,
        EventKind::KeyEnrolled,
        EventKind::KeyRevoked,
        EventKind::ArtifactErased,
        EventKind::LedgerKeyRotated,
        EventKind::ScopeDefined,
        EventKind::PolicyApproved,
        EventKind::ObjectiveSet,
        EventKind::ObjectiveMeasured,
        EventKind::AssetRegistered,
        EventKind::RiskIdentified,
        EventKind::RiskAssessed,
        EventKind::RiskRescored,
        EventKind::RiskTreatmentDecided,
        EventKind::RiskAccepted,
        EventKind::RiskClosed,
        EventKind::RiskDetailsChanged,
        EventKind::ControlApplicabilitySet,
        EventKind::ControlApproved,
        EventKind::ImplementationStatusChanged,
        EventKind::EvidenceSubmitted,
        EventKind::AuditPlanned,
        EventKind::AuditCompleted,
        EventKind::FindingRaised,
        EventKind::CorrectiveActionOpened,
        EventKind::RootCauseRecorded,
        EventKind::CorrectiveActionClosed,
        EventKind::CorrectiveActionVerified,
        EventKind::ManagementReviewHeld,
        EventKind::TrainingRecorded,
        EventKind::IncidentRecorded,
        EventKind::IncidentClosed,
        EventKind::SupplierAssessed,
        EventKind::ContinuityTestHeld,
        EventKind::ReviewDecisionClosed,
        EventKind::ExternalAuditHeld,
        EventKind::LegalRequirementRecorded,
        EventKind::ComplianceReviewed,
        EventKind::AccessReviewRecorded,
        EventKind::VulnerabilityRecorded,
        EventKind::PatchComplianceMeasured,
        EventKind::AuditEvidenceReceived,
    ];

    /// The snake_case name, as in the proto oneof.
    pub fn name(self) -> &'static str {
        use EventKind::*;
        match self {
            Genesis => "genesis",
            KeyEnrolled => "key_enrolled",
            KeyRevoked => "key_revoked",
            ArtifactErased => "artifact_erased",
            LedgerKeyRotated => "ledger_key_rotated",
            ScopeDefined => "scope_defined",
            PolicyApproved => "policy_approved",
            ObjectiveSet => "objective_set",
            ObjectiveMeasured => "objective_measured",
            AssetRegistered => "asset_registered",
            RiskIdentified => "risk_identified",
            RiskAssessed => "risk_assessed",
            RiskRescored => "risk_rescored",
            RiskTreatmentDecided => "risk_treatment_decided",
            RiskAccepted => "risk_accepted",
            RiskClosed => "risk_closed",
            RiskDetailsChanged => "risk_details_changed",
            ControlApplicabilitySet => "control_applicability_set",
            ControlApproved => "control_approved",
            ImplementationStatusChanged => "implementation_status_changed",
            EvidenceSubmitted => "evidence_submitted",
            AuditPlanned => "audit_planned",
            AuditCompleted => "audit_completed",
            FindingRaised => "finding_raised",
            CorrectiveActionOpened => "corrective_action_opened",
            RootCauseRecorded => "root_cause_recorded",
            CorrectiveActionClosed => "corrective_action_closed",
            CorrectiveActionVerified => "corrective_action_verified",
            ManagementReviewHeld => "management_review_held",
            TrainingRecorded => "training_recorded",
            IncidentRecorded => "incident_recorded",
            IncidentClosed => "incident_closed",
            SupplierAssessed => "supplier_assessed",
            ContinuityTestHeld => "continuity_test_held",
            ReviewDecisionClosed => "review_decision_closed",
            ExternalAuditHeld => "external_audit_held",
            LegalRequirementRecorded => "legal_requirement_recorded",
            ComplianceReviewed => "compliance_reviewed",
            AccessReviewRecorded => "access_review_recorded",
            VulnerabilityRecorded => "vulnerability_recorded",
            PatchComplianceMeasured => "patch_compliance_measured",
            AuditEvidenceReceived => "audit_evidence_received",
        }
    }

    /// The roles that may append this kind. Admin runs the ledger (keys, erasure, scope) but
    /// does not make ISMS decisions, so it is deliberately absent from most rows.
    pub fn allowed_roles(self) -> &'static [Role] {
        use EventKind::*;
        use Role::*;
        match self {
            Genesis | KeyEnrolled | KeyRevoked | ArtifactErased | LedgerKeyRotated => &[Admin],
            ScopeDefined => &[Admin, Management],
            PolicyApproved | ObjectiveSet | ManagementReviewHeld | ControlApproved
            | ReviewDecisionClosed => &[Management],
            RiskAccepted => &[Management],
            AssetRegistered => &[Admin, RiskOwner, ControlOwner],
            ObjectiveMeasured => &[Management, ControlOwner, RiskOwner, Agent],
            RiskIdentified | RiskAssessed | RiskRescored | RiskTreatmentDecided | RiskClosed
            | RiskDetailsChanged => &[RiskOwner, Management],
            ControlApplicabilitySet => &[ControlOwner, Management],
            ImplementationStatusChanged => &[ControlOwner],
            EvidenceSubmitted => &[Agent, ControlOwner, Auditor],
            AuditPlanned | AuditCompleted => &[Auditor, Management],
            AuditEvidenceReceived => &[Auditor],
            ExternalAuditHeld => &[Management, Auditor],
            LegalRequirementRecorded => &[Management, RiskOwner, ControlOwner],
            ComplianceReviewed => &[Management, ControlOwner, Auditor],
            FindingRaised => &[Auditor],
            CorrectiveActionOpened => &[Auditor, ControlOwner, RiskOwner, Management],
            RootCauseRecorded | CorrectiveActionClosed => &[ControlOwner, RiskOwner, Management],
            CorrectiveActionVerified => &[Auditor],
            TrainingRecorded => &[Admin, ControlOwner],
            IncidentRecorded | IncidentClosed => &[ControlOwner, RiskOwner],
            SupplierAssessed => &[ControlOwner, RiskOwner],
            ContinuityTestHeld => &[ControlOwner],
            AccessReviewRecorded | VulnerabilityRecorded | PatchComplianceMeasured => {
                &[ControlOwner, Agent]
            }
        }
    }
}

impl Event {
    /// This event's kind.
    pub fn kind(&self) -> EventKind {
        use Event as E;
        use EventKind as K;
        match self {
            E::Genesis { .. } => K::Genesis,
            E::KeyEnrolled(_) => K::KeyEnrolled,
            E::KeyRevoked { .. } => K::KeyRevoked,
            E::ArtifactErased { .. } => K::ArtifactErased,
            E::LedgerKeyRotated { .. } => K::LedgerKeyRotated,
            E::ScopeDefined(_) => K::ScopeDefined,
            E::PolicyApproved { .. } => K::PolicyApproved,
            E::ObjectiveSet { .. } => K::ObjectiveSet,
            E::ObjectiveMeasured { .. } => K::ObjectiveMeasured,
            E::ReviewDecisionClosed { .. } => K::ReviewDecisionClosed,
            E::ExternalAuditHeld { .. } => K::ExternalAuditHeld,
            E::LegalRequirementRecorded { .. } => K::LegalRequirementRecorded,
            E::ComplianceReviewed { .. } => K::ComplianceReviewed,
            E::AssetRegistered { .. } => K::AssetRegistered,
            E::RiskIdentified { .. } => K::RiskIdentified,
            E::RiskAssessed { .. } => K::RiskAssessed,
            E::RiskRescored { .. } => K::RiskRescored,
            E::RiskTreatmentDecided { .. } => K::RiskTreatmentDecided,
            E::RiskAccepted { .. } => K::RiskAccepted,
            E::RiskClosed { .. } => K::RiskClosed,
            E::RiskDetailsChanged { .. } => K::RiskDetailsChanged,
            E::ControlApplicabilitySet { .. } => K::ControlApplicabilitySet,
            E::ControlApproved { .. } => K::ControlApproved,
            E::ImplementationStatusChanged { .. } => K::ImplementationStatusChanged,
            E::EvidenceSubmitted { .. } => K::EvidenceSubmitted,
            E::AuditPlanned { .. } => K::AuditPlanned,
            E::AuditCompleted { .. } => K::AuditCompleted,
            E::FindingRaised { .. } => K::FindingRaised,
            E::CorrectiveActionOpened { .. } => K::CorrectiveActionOpened,
            E::RootCauseRecorded { .. } => K::RootCauseRecorded,
            E::CorrectiveActionClosed { .. } => K::CorrectiveActionClosed,
            E::CorrectiveActionVerified { .. } => K::CorrectiveActionVerified,
            E::ManagementReviewHeld { .. } => K::ManagementReviewHeld,
            E::TrainingRecorded { .. } => K::TrainingRecorded,
            E::IncidentRecorded { .. } => K::IncidentRecorded,
            E::IncidentClosed { .. } => K::IncidentClosed,
            E::SupplierAssessed { .. } => K::SupplierAssessed,
            E::ContinuityTestHeld { .. } => K::ContinuityTestHeld,
            E::AccessReviewRecorded { .. } => K::AccessReviewRecorded,
            E::VulnerabilityRecorded { .. } => K::VulnerabilityRecorded,
            E::PatchComplianceMeasured { .. } => K::PatchComplianceMeasured,
            E::AuditEvidenceReceived { .. } => K::AuditEvidenceReceived,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let t = Timestamp::parse_date("2025-03-10").unwrap();
        assert_eq!(t.to_string(), "2025-03-10");
        assert_eq!(t.plus_days(30).to_string(), "2025-04-09");
        assert_eq!(
            Timestamp::parse_date("2024-02-29")
                .unwrap()
                .plus_days(1)
                .to_string(),
            "2024-03-01"
        );
        assert_eq!(Timestamp(0).to_string(), "1970-01-01");
    }

    #[test]
    fn bands_follow_the_appetite() {
        let s = |l, i| {
            Score::of(
                Likelihood::parse("l", l).unwrap(),
                Impact::parse("i", i).unwrap(),
            )
        };
        assert_eq!(s(2, 2).band(), Band::Accept);
        assert_eq!(s(1, 5).band(), Band::Mitigate);
        assert_eq!(s(2, 5).band(), Band::Mitigate);
        assert_eq!(s(3, 5).band(), Band::Escalate);
        assert_eq!(s(5, 5).get(), 25);
    }
}
