//! The ISMS state and `apply`: how each accepted event changes it. `apply` never fails and
//! holds no business rules (those live in `rules`); an event that refers to something missing
//! (possible in a bitemporal fold that hides later-effective entries) is applied as far as
//! it makes sense and otherwise ignored.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Arc,
};

use serde::{Deserialize, Serialize};

use crate::{catalog::ControlId, model::*};

/// Where a fact came from: the entry that recorded it. Registers carry these so a reader can
/// go from a row to the entries that justify it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The entry's sequence number.
    pub seq: u64,
    /// Transaction time: when the ledger recorded it.
    pub recorded_at: Timestamp,
    /// Valid time: when it happened.
    pub effective_at: Timestamp,
    /// Who signed it (the key's subject).
    pub subject: Subject,
}

/// A key as the ledger knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Who holds it.
    pub subject: Subject,
    /// Its roles.
    pub roles: Vec<Role>,
    /// Revoked by this entry, if at all.
    pub revoked: Option<u64>,
}

/// One score on a risk's history. Kept small (no strings): the history is the one part of
/// the state that grows with every rescoring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScorePoint {
    /// `inherent` or `residual`.
    pub residual: bool,
    /// Likelihood.
    pub likelihood: Likelihood,
    /// Impact.
    pub impact: Impact,
    /// The entry that recorded it.
    pub seq: u64,
    /// When it took effect.
    pub effective_at: Timestamp,
}

/// Where a risk stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskStatus {
    /// Identified, not yet assessed.
    Identified,
    /// Assessed (scored).
    Assessed,
    /// A treatment is decided.
    Treated,
    /// The decided treatment is to accept the risk, and management has not accepted it yet
    /// ("accept with documented management approval").
    AwaitingAcceptance,
    /// Accepted by management.
    Accepted,
    /// Closed.
    Closed,
}

/// A risk as the register holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Risk {
    pub asset: String,
    pub threat: String,
    pub vulnerability: String,
    pub owner: String,
    pub inherent: Option<(Likelihood, Impact)>,
    pub residual: Option<(Likelihood, Impact)>,
    pub treatment: Option<Treatment>,
    pub controls: Vec<ControlId>,
    pub plan: String,
    pub status: RiskStatus,
    pub acceptance: Option<(String, Meta)>,
    pub version: u64,
    pub created: Meta,
    pub updated: Meta,
}

impl Risk {
    /// The score now: residual if rescored, else inherent.
    pub fn current_score(&self) -> Option<Score> {
        self.residual
            .or(self.inherent)
            .map(|(l, i)| Score::of(l, i))
    }
}

/// One SoA row that has been touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SoaEntry {
    pub applicable: Option<bool>,
    pub justification: String,
    pub implementation: String,
    pub owner: String,
    pub status: Option<ImplementationStatus>,
    /// The SoA version and entry that approved this row, if it is approved and unchanged since.
    pub approval: Option<(String, Meta)>,
    pub version: u64,
    pub updated: Meta,
}

/// Evidence for one control, kept compact so state does not grow with every submission.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceStats {
    /// How many items.
    pub count: u64,
    /// How many passed.
    pub passed: u64,
    /// How many failed.
    pub failed: u64,
    /// The latest by collection time: id, result, collected at, entry.
    pub latest: Option<(EvidenceId, CheckResult, Timestamp, Meta)>,
    /// Days on which evidence was collected; bounded by the calendar, not by the number of
    /// submissions.
    pub days: DaySet,
}

/// A set of days (since 1970) as a bitmap from the first day: a few hundred bytes for years
/// of daily evidence, and cheap to decode from a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySet {
    first: i64,
    bits: Vec<u64>,
}

impl DaySet {
    /// Adds a day.
    pub fn insert(&mut self, day: i64) {
        if self.bits.is_empty() {
            self.first = day;
        }
        if day < self.first {
            // Shift right by whole words, keeping the first day word-aligned relative to
            // the old one.
            let words = ((self.first - day) as usize).div_ceil(64);
            let mut bits = vec![0; words];
            bits.extend_from_slice(&self.bits);
            self.bits = bits;
            self.first -= 64 * words as i64;
        }
        let off = (day - self.first) as usize;
        if off / 64 >= self.bits.len() {
            self.bits.resize(off / 64 + 1, 0);
        }
        self.bits[off / 64] |= 1 << (off % 64);
    }

    /// Whether the day is in the set.
    pub fn contains(&self, day: i64) -> bool {
        if day < self.first {
            return false;
        }
        let off = (day - self.first) as usize;
        self.bits
            .get(off / 64)
            .is_some_and(|w| w & (1 << (off % 64)) != 0)
    }

    /// The earliest day.
    pub fn first(&self) -> Option<i64> {
        let (i, w) = self.bits.iter().enumerate().find(|(_, w)| **w != 0)?;
        Some(self.first + 64 * i as i64 + i64::from(w.trailing_zeros()))
    }

    /// The latest day.
    pub fn last(&self) -> Option<i64> {
        let (i, w) = self.bits.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
        Some(self.first + 64 * i as i64 + 63 - i64::from(w.leading_zeros()))
    }
}

/// An internal audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Audit {
    pub scope: String,
    pub auditor: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub areas: Vec<AuditArea>,
    pub completed: Option<(String, Meta)>,
    pub version: u64,
    pub planned: Meta,
    /// The requested evidence received so far.
    pub received: Vec<EvidenceReceived>,
}

/// An item of requested audit evidence, received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct EvidenceReceived {
    pub area: String,
    pub item: String,
    pub reference: String,
    pub received: Meta,
}

/// An audit finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Finding {
    pub audit_id: AuditId,
    pub grade: FindingGrade,
    pub area: String,
    pub description: String,
    pub controls: Vec<ControlId>,
    pub auditee: String,
    pub raised: Meta,
}

/// Where a corrective action stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionStatus {
    /// Open (possibly reopened after an ineffective verification).
    Open,
    /// Closed, awaiting verification.
    Closed,
    /// Verified effective by an auditor.
    Verified,
}

impl ActionStatus {
    /// `open`, `closed`, `verified`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Verified => "verified",
        }
    }
}

/// A corrective action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CorrectiveAction {
    pub finding_id: FindingId,
    /// The finding's grade when the action was opened; it sets the SLA.
    pub grade: Option<FindingGrade>,
    /// The finding's effective time: the SLA clock starts there.
    pub raised_at: Timestamp,
    pub description: String,
    pub owner: String,
    pub status: ActionStatus,
    pub root_cause: Option<(String, Meta)>,
    pub closed: Option<(String, Meta)>,
    pub verified: Option<(bool, String, Meta)>,
    pub version: u64,
    pub opened: Meta,
}

/// A management review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Review {
    pub attendees: Vec<String>,
    pub inputs: BTreeSet<ReviewInput>,
    pub decisions: Vec<(ReviewOutput, String)>,
    /// Where covered inputs were presented.
    pub references: BTreeMap<ReviewInput, String>,
    /// Decisions carried out, by their number (from 1).
    pub closed: BTreeMap<u32, DecisionClosure>,
    pub held: Meta,
}

/// A legal, regulatory or contractual requirement and its latest compliance review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LegalRequirement {
    pub title: String,
    pub jurisdiction: String,
    pub owner: String,
    pub controls: Vec<ControlId>,
    pub review: Option<ComplianceReview>,
    pub recorded: Meta,
}

/// A compliance review's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ComplianceReview {
    pub result: CheckResult,
    pub note: String,
    pub next_review: Option<Timestamp>,
    pub reviewed: Meta,
}

/// An audit by a certification body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ExternalAudit {
    pub kind: ExternalAuditKind,
    pub body: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub major_nonconformities: u32,
    pub minor_nonconformities: u32,
    pub certified: bool,
    pub summary: String,
    pub held: Meta,
}

/// A review decision carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct DecisionClosure {
    pub resolution: String,
    pub closed: Meta,
}

/// A training record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Training {
    pub person: String,
    pub course: String,
    pub completed: bool,
    pub campaign: String,
    pub due: Option<Timestamp>,
    pub updated: Meta,
}

/// A security incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Incident {
    pub title: String,
    pub severity: Severity,
    pub controls: Vec<ControlId>,
    pub detected_at: Option<Timestamp>,
    pub assets: Vec<String>,
    pub nonconformity: bool,
    pub near_miss: bool,
    pub corrective_actions: Vec<ActionId>,
    pub closed: Option<(String, Meta)>,
    pub version: u64,
    pub recorded: Meta,
}

/// An approved policy or other document under document control.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Policy {
    pub title: String,
    pub kind: PolicyKind,
    pub version: String,
    pub published: bool,
    pub next_review: Option<Timestamp>,
    /// The versions this one superseded, oldest first.
    pub superseded: Vec<String>,
    pub approved: Meta,
}

/// An ISMS objective with its metric and target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Objective {
    pub description: String,
    pub metric: String,
    pub target: String,
    /// Its measurements, in the order recorded.
    pub measurements: Vec<Measurement>,
    pub set: Meta,
}

/// One measurement of an objective's metric.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Measurement {
    pub value: String,
    pub note: String,
    pub measured: Meta,
}

/// A registered information asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Asset {
    pub name: String,
    pub asset_type: String,
    pub owner: String,
    pub classification: String,
    pub location: String,
    pub retired: bool,
    pub registered: Meta,
}

/// A business continuity test and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ContinuityTest {
    pub plan: String,
    pub result: CheckResult,
    pub controls: Vec<ControlId>,
    pub held: Meta,
}

/// An access review, as its latest record states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct AccessReview {
    pub system: String,
    pub reviewer: String,
    pub due: Timestamp,
    pub completed: Option<Timestamp>,
    pub accounts_reviewed: u32,
    pub accounts_removed: u32,
    pub recorded: Meta,
}

/// A technical vulnerability, as its latest record states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Vulnerability {
    pub title: String,
    pub severity: Severity,
    pub asset: Option<AssetId>,
    pub detected: Timestamp,
    pub remediated: Option<Timestamp>,
    /// The remediation deadline: as recorded, else the SLA of its severity.
    pub due: Timestamp,
    pub recorded: Meta,
}

/// The remediation SLA of a vulnerability's severity, in days from detection: critical 15,
/// high 30, medium 90, low 180.
pub fn remediation_sla_days(severity: Severity) -> i64 {
    match severity {
        Severity::Critical => 15,
        Severity::High => 30,
        Severity::Medium => 90,
        Severity::Low => 180,
    }
}

/// The latest patch compliance measurement of one population of devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct PatchCompliance {
    pub devices_total: u32,
    pub devices_compliant: u32,
    pub measured: Meta,
}

/// An erased artifact: why, and the entry that erased it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Erasure {
    pub reason: String,
    pub erased: Meta,
}

/// The latest assessment of a supplier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Supplier {
    pub name: String,
    pub result: CheckResult,
    pub notes: String,
    pub criticality: Option<Severity>,
    pub next_assessment: Option<Timestamp>,
    pub assessments: u64,
    pub assessed: Meta,
}

/// Every register's underlying state: what a pure fold of the entries produces. Serialized
/// with bincode for snapshots (rebuildable, never part of the permanent record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct State {
    /// Entries applied so far (the next seq to apply when folding a whole ledger).
    pub applied: u64,
    pub keys: BTreeMap<KeyIdBytes, KeyInfo>,
    pub scope: Option<(Scope, Meta)>,
    pub policies: BTreeMap<PolicyId, Policy>,
    pub objectives: BTreeMap<ObjectiveId, Objective>,
    pub assets: BTreeMap<AssetId, Asset>,
    pub risks: BTreeMap<RiskId, Risk>,
    pub soa: BTreeMap<ControlId, SoaEntry>,
    pub evidence: BTreeMap<ControlId, EvidenceStats>,
    pub audits: BTreeMap<AuditId, Audit>,
    pub findings: BTreeMap<FindingId, Finding>,
    pub actions: BTreeMap<ActionId, CorrectiveAction>,
    pub reviews: BTreeMap<ReviewId, Review>,
    pub training: BTreeMap<TrainingId, Training>,
    pub incidents: BTreeMap<IncidentId, Incident>,
    pub external_audits: BTreeMap<AuditId, ExternalAudit>,
    pub legal: BTreeMap<RequirementId, LegalRequirement>,
    pub suppliers: BTreeMap<SupplierId, Supplier>,
    pub continuity_tests: BTreeMap<TestId, ContinuityTest>,
    pub access_reviews: BTreeMap<AccessReviewId, AccessReview>,
    pub vulnerabilities: BTreeMap<VulnerabilityId, Vulnerability>,
    /// By the scope measured ("servers").
    pub patch_compliance: BTreeMap<String, PatchCompliance>,
    pub erased: BTreeMap<[u8; 32], Erasure>,
    /// Every risk's score history. Not serialized: it is the one part of the state that grows
    /// with history, and the snapshot every query decodes must not (see [`ScoreHistory`]).
    #[serde(skip)]
    pub history: ScoreHistory,
}

impl State {
    /// The subject of a key, or `ledger` for the genesis signer (the ledger key is not an
    /// enrolled key) and `unknown` for anything else.
    pub fn subject_of(&self, key_id: &KeyIdBytes) -> Subject {
        match self.keys.get(key_id) {
            Some(k) => k.subject.clone(),
            None if self.applied == 0 => Subject("ledger".into()),
            None => Subject("unknown".into()),
        }
    }

    /// The current version of the entity an event targets (0 if it does not exist yet), with
    /// a name for messages. `None` for events that target no versioned entity.
    pub fn version_of(&self, event: &Event) -> Option<(String, u64)> {
        use Event as E;
        let v = |name: String, version: Option<u64>| Some((name, version.unwrap_or(0)));
        match event {
            E::RiskIdentified { risk_id, .. }
            | E::RiskAssessed { risk_id, .. }
            | E::RiskRescored { risk_id, .. }
            | E::RiskTreatmentDecided { risk_id, .. }
            | E::RiskAccepted { risk_id, .. }
            | E::RiskClosed { risk_id, .. }
            | E::RiskDetailsChanged { risk_id, .. } => v(
                format!("risk {risk_id}"),
                self.risks.get(risk_id).map(|r| r.version),
            ),
            E::ControlApplicabilitySet { control_id, .. }
            | E::ImplementationStatusChanged { control_id, .. } => v(
                format!("control {control_id}"),
                self.soa.get(control_id).map(|s| s.version),
            ),
            E::CorrectiveActionOpened { action_id, .. }
            | E::RootCauseRecorded { action_id, .. }
            | E::CorrectiveActionClosed { action_id, .. }
            | E::CorrectiveActionVerified { action_id, .. } => v(
                format!("corrective action {action_id}"),
                self.actions.get(action_id).map(|a| a.version),
            ),
            E::AuditPlanned { audit_id, .. } | E::AuditCompleted { audit_id, .. } => v(
                format!("audit {audit_id}"),
                self.audits.get(audit_id).map(|a| a.version),
            ),
            E::IncidentRecorded { incident_id, .. } | E::IncidentClosed { incident_id, .. } => v(
                format!("incident {incident_id}"),
                self.incidents.get(incident_id).map(|i| i.version),
            ),
            _ => None,
        }
    }
}

/// Every risk's score history, in the order recorded: sealed segments shared with the query
/// engine (immutable, one per snapshot interval, stored next to the snapshot that ends it)
/// plus the points applied since the last seal. Cloning it copies one `Arc` and the short
/// tail, so a query's cost does not grow with the number of rescorings; the full history is
/// walked only when a register reads it. Equality compares the histories, not how they are
/// split into segments, so a snapshot-backed state equals the naive fold.
#[derive(Clone, Default)]
pub struct ScoreHistory {
    sealed: Option<Arc<HistorySegment>>,
    tail: BTreeMap<RiskId, Vec<ScorePoint>>,
}

/// The points of one snapshot interval, linked to the segment before it.
pub(crate) struct HistorySegment {
    pub(crate) points: BTreeMap<RiskId, Vec<ScorePoint>>,
    pub(crate) prev: Option<Arc<HistorySegment>>,
}

impl Drop for HistorySegment {
    // The chain has one link per snapshot interval: unlink it iteratively so dropping a long
    // history cannot overflow the stack through nested drops.
    fn drop(&mut self) {
        let mut next = self.prev.take();
        while let Some(seg) = next {
            next = Arc::try_unwrap(seg)
                .ok()
                .and_then(|mut only| only.prev.take());
        }
    }
}

impl fmt::Debug for HistorySegment {
    // Not derived: that would print the whole chain, recursively.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistorySegment")
            .field("risks", &self.points.len())
            .field("prev", &self.prev.is_some())
            .finish()
    }
}

impl ScoreHistory {
    fn push(&mut self, risk: &RiskId, point: ScorePoint) {
        self.tail.entry(risk.clone()).or_default().push(point);
    }

    /// One risk's history (a cheap handle; the points are collected when read).
    pub fn of(&self, risk: &RiskId) -> RiskHistory {
        RiskHistory {
            sealed: self.sealed.clone(),
            tail: self.tail.get(risk).cloned().unwrap_or_default(),
            risk: risk.clone(),
        }
    }

    /// Every risk's history, in the order recorded. Walks the whole history.
    pub fn flatten(&self) -> BTreeMap<RiskId, Vec<ScorePoint>> {
        let mut out: BTreeMap<RiskId, Vec<ScorePoint>> = BTreeMap::new();
        for seg in chain(&self.sealed) {
            for (risk, points) in &seg.points {
                out.entry(risk.clone())
                    .or_default()
                    .extend_from_slice(points);
            }
        }
        for (risk, points) in &self.tail {
            out.entry(risk.clone())
                .or_default()
                .extend_from_slice(points);
        }
        out
    }

    /// Seals the tail: returns its points (to be stored with a snapshot) and links them as a
    /// new segment, which is also returned for the engine to share with later queries.
    pub(crate) fn seal(&mut self) -> (BTreeMap<RiskId, Vec<ScorePoint>>, Arc<HistorySegment>) {
        let points = std::mem::take(&mut self.tail);
        let seg = Arc::new(HistorySegment {
            points: points.clone(),
            prev: self.sealed.take(),
        });
        self.sealed = Some(seg.clone());
        (points, seg)
    }

    /// The sealed history of a state decoded from a snapshot (whose tail is empty).
    pub(crate) fn set_sealed(&mut self, sealed: Option<Arc<HistorySegment>>) {
        self.sealed = sealed;
    }
}

/// The segments of a chain, oldest first.
fn chain(head: &Option<Arc<HistorySegment>>) -> Vec<&HistorySegment> {
    let mut segs = Vec::new();
    let mut next = head.as_deref();
    while let Some(seg) = next {
        segs.push(seg);
        next = seg.prev.as_deref();
    }
    segs.reverse();
    segs
}

impl PartialEq for ScoreHistory {
    fn eq(&self, other: &Self) -> bool {
        self.flatten() == other.flatten()
    }
}

impl Eq for ScoreHistory {}

impl fmt::Debug for ScoreHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.flatten().fmt(f)
    }
}

/// One risk's score history as a register row holds it: building the row costs nothing that
/// grows with history; reading the points walks it.
#[derive(Clone)]
pub struct RiskHistory {
    sealed: Option<Arc<HistorySegment>>,
    tail: Vec<ScorePoint>,
    risk: RiskId,
}

impl RiskHistory {
    /// The points, in the order recorded.
    pub fn points(&self) -> Vec<ScorePoint> {
        let mut out = Vec::new();
        for seg in chain(&self.sealed) {
            if let Some(points) = seg.points.get(&self.risk) {
                out.extend_from_slice(points);
            }
        }
        out.extend_from_slice(&self.tail);
        out
    }

    /// (residual?, score, entry) in the order recorded.
    pub fn iter(&self) -> std::vec::IntoIter<(bool, Score, u64)> {
        self.points()
            .into_iter()
            .map(|p| (p.residual, Score::of(p.likelihood, p.impact), p.seq))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

impl PartialEq for RiskHistory {
    fn eq(&self, other: &Self) -> bool {
        self.points() == other.points()
    }
}

impl Eq for RiskHistory {}

impl fmt::Debug for RiskHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Applies one accepted event. Never fails; holds no rules.
pub fn apply(state: &mut State, meta: Meta, event: &Event) {
    use Event as E;
    state.applied = state.applied.max(meta.seq + 1);
    match event {
        E::Genesis { admins, .. } => {
            for k in admins {
                enrol(state, k);
            }
        }
        E::KeyEnrolled(k) => enrol(state, k),
        E::KeyRevoked { key_id, .. } => {
            if let Some(k) = state.keys.get_mut(key_id) {
                k.revoked.get_or_insert(meta.seq);
            }
        }
        // The ledger follows the hand-over; the registers hold nothing of it.
        E::LedgerKeyRotated { .. } => {}
        E::ArtifactErased { blake3, reason } => {
            state.erased.insert(
                *blake3,
                Erasure {
                    reason: reason.clone(),
                    erased: meta,
                },
            );
        }
        E::ScopeDefined(scope) => state.scope = Some((scope.clone(), meta)),
        E::PolicyApproved {
            policy_id,
            title,
            kind,
            version,
            published,
            next_review,
        } => {
            let mut superseded = state
                .policies
                .get(policy_id)
                .map(|p| {
                    let mut before = p.superseded.clone();
                    if p.version != *version {
                        before.push(p.version.clone());
                    }
                    before
                })
                .unwrap_or_default();
            superseded.retain(|v| v != version);
            state.policies.insert(
                policy_id.clone(),
                Policy {
                    title: title.clone(),
                    kind: *kind,
                    version: version.clone(),
                    published: *published,
                    next_review: *next_review,
                    superseded,
                    approved: meta,
                },
            );
        }
        E::ObjectiveSet {
            objective_id,
            description,
            metric,
            target,
        } => {
            // A changed target keeps the measurements taken so far.
            let measurements = state
                .objectives
                .get(objective_id)
                .map(|o| o.measurements.clone())
                .unwrap_or_default();
            state.objectives.insert(
                objective_id.clone(),
                Objective {
                    description: description.clone(),
                    metric: metric.clone(),
                    target: target.clone(),
                    measurements,
                    set: meta,
                },
            );
        }
        E::ObjectiveMeasured {
            objective_id,
            value,
            note,
        } => {
            if let Some(o) = state.objectives.get_mut(objective_id) {
                o.measurements.push(Measurement {
                    value: value.clone(),
                    note: note.clone(),
                    measured: meta,
                });
            }
        }
        E::AssetRegistered {
            asset_id,
            name,
            asset_type,
            owner,
            classification,
            location,
            retired,
        } => {
            // Registered again (to retire it, to change its owner): a field left empty keeps
            // what the asset had.
            let earlier = state.assets.get(asset_id);
            let kept = |given: &String, was: fn(&Asset) -> &String| match (given.trim(), earlier) {
                ("", Some(a)) => was(a).clone(),
                _ => given.clone(),
            };
            let asset = Asset {
                name: kept(name, |a| &a.name),
                asset_type: kept(asset_type, |a| &a.asset_type),
                owner: kept(owner, |a| &a.owner),
                classification: kept(classification, |a| &a.classification),
                location: kept(location, |a| &a.location),
                retired: *retired,
                registered: meta,
            };
            state.assets.insert(asset_id.clone(), asset);
        }
        E::RiskIdentified {
            risk_id,
            asset,
            threat,
            vulnerability,
            risk_owner,
        } => {
            let version = state.risks.get(risk_id).map_or(0, |r| r.version);
            let risk = state.risks.entry(risk_id.clone()).or_insert_with(|| Risk {
                asset: String::new(),
                threat: String::new(),
                vulnerability: String::new(),
                owner: String::new(),
                inherent: None,
                residual: None,
                treatment: None,
                controls: Vec::new(),
                plan: String::new(),
                status: RiskStatus::Identified,
                acceptance: None,
                version,
                created: meta.clone(),
                updated: meta.clone(),
            });
            risk.asset = asset.clone();
            risk.threat = threat.clone();
            risk.vulnerability = vulnerability.clone();
            risk.owner = risk_owner.clone();
            risk.version += 1;
            risk.updated = meta;
        }
        E::RiskAssessed {
            risk_id,
            likelihood,
            impact,
        } => {
            if let Some(r) = state.risks.get_mut(risk_id) {
                r.inherent = Some((*likelihood, *impact));
                if r.status == RiskStatus::Identified {
                    r.status = RiskStatus::Assessed;
                }
                state.history.push(
                    risk_id,
                    ScorePoint {
                        residual: false,
                        likelihood: *likelihood,
                        impact: *impact,
                        seq: meta.seq,
                        effective_at: meta.effective_at,
                    },
                );
                r.version += 1;
                r.updated = meta;
            }
        }
        E::RiskRescored {
            risk_id,
            likelihood,
            impact,
            ..
        } => {
            if let Some(r) = state.risks.get_mut(risk_id) {
                r.residual = Some((*likelihood, *impact));
                state.history.push(
                    risk_id,
                    ScorePoint {
                        residual: true,
                        likelihood: *likelihood,
                        impact: *impact,
                        seq: meta.seq,
                        effective_at: meta.effective_at,
                    },
                );
                r.version += 1;
                r.updated = meta;
            }
        }
        E::RiskTreatmentDecided {
            risk_id,
            treatment,
            controls,
            plan,
        } => {
            if let Some(r) = state.risks.get_mut(risk_id) {
                r.treatment = Some(*treatment);
                r.controls = controls.clone();
                r.plan = plan.clone();
                if matches!(
                    r.status,
                    RiskStatus::Identified
                        | RiskStatus::Assessed
                        | RiskStatus::Treated
                        | RiskStatus::AwaitingAcceptance
                ) {
                    // Accepting a risk takes management's approval: until a management key
                    // accepts it, the risk waits for it.
                    r.status = if *treatment == Treatment::Accept && r.acceptance.is_none() {
                        RiskStatus::AwaitingAcceptance
                    } else {
                        RiskStatus::Treated
                    };
                }
                r.version += 1;
                r.updated = meta;
            }
        }
        E::RiskAccepted {
            risk_id,
            justification,
        } => {
            if let Some(r) = state.risks.get_mut(risk_id) {
                r.acceptance = Some((justification.clone(), meta.clone()));
                r.status = RiskStatus::Accepted;
                r.version += 1;
                r.updated = meta;
            }
        }
        E::RiskDetailsChanged {
            risk_id,
            asset,
            threat,
            vulnerability,
            risk_owner,
            ..
        } => {
            if let Some(r) = state.risks.get_mut(risk_id) {
                r.asset = asset.clone();
                r.threat = threat.clone();
                r.vulnerability = vulnerability.clone();
                r.owner = risk_owner.clone();
                r.version += 1;
                r.updated = meta;
            }
        }
        E::RiskClosed { risk_id, .. } => {
            if let Some(r) = state.risks.get_mut(risk_id) {
                r.status = RiskStatus::Closed;
                r.version += 1;
                r.updated = meta;
            }
        }
        E::ControlApplicabilitySet {
            control_id,
            applicable,
            justification,
            implementation,
            owner,
        } => {
            let row = state.soa.entry(*control_id).or_default();
            row.applicable = Some(*applicable);
            row.justification = justification.clone();
            row.implementation = implementation.clone();
            row.owner = owner.clone();
            // A changed row is no longer what management approved.
            row.approval = None;
            row.version += 1;
            row.updated = meta;
        }
        E::ControlApproved {
            control_ids,
            soa_version,
        } => {
            let ids: Vec<ControlId> = if control_ids.is_empty() {
                state.soa.keys().copied().collect()
            } else {
                control_ids.clone()
            };
            for id in ids {
                let row = state.soa.entry(id).or_default();
                row.approval = Some((soa_version.clone(), meta.clone()));
            }
        }
        E::ImplementationStatusChanged {
            control_id, status, ..
        } => {
            let row = state.soa.entry(*control_id).or_default();
            row.status = Some(*status);
            row.approval = None;
            row.version += 1;
            row.updated = meta;
        }
        E::EvidenceSubmitted {
            evidence_id,
            controls,
            result,
            collected_at,
            ..
        } => {
            for c in controls {
                let stats = state.evidence.entry(*c).or_default();
                stats.count += 1;
                match result {
                    CheckResult::Pass => stats.passed += 1,
                    CheckResult::Fail => stats.failed += 1,
                }
                stats.days.insert(collected_at.day_number());
                let newer = stats
                    .latest
                    .as_ref()
                    .is_none_or(|(_, _, at, _)| *collected_at >= *at);
                if newer {
                    stats.latest =
                        Some((evidence_id.clone(), *result, *collected_at, meta.clone()));
                }
            }
        }
        E::AuditPlanned {
            audit_id,
            scope,
            auditor,
            start,
            end,
            areas,
        } => {
            let earlier = state.audits.get(audit_id);
            let version = earlier.map_or(0, |a| a.version) + 1;
            // A re-planned audit keeps what was received of what it still requests.
            let received = earlier.map_or_else(Vec::new, |a| {
                a.received
                    .iter()
                    .filter(|r| {
                        areas
                            .iter()
                            .any(|x| x.area == r.area && x.evidence_requested.contains(&r.item))
                    })
                    .cloned()
                    .collect()
            });
            state.audits.insert(
                audit_id.clone(),
                Audit {
                    scope: scope.clone(),
                    auditor: auditor.clone(),
                    start: *start,
                    end: *end,
                    areas: areas.clone(),
                    completed: None,
                    version,
                    planned: meta,
                    received,
                },
            );
        }
        E::AuditEvidenceReceived {
            audit_id,
            area,
            item,
            reference,
        } => {
            if let Some(a) = state.audits.get_mut(audit_id) {
                a.received.retain(|r| !(r.area == *area && r.item == *item));
                a.received.push(EvidenceReceived {
                    area: area.clone(),
                    item: item.clone(),
                    reference: reference.clone(),
                    received: meta,
                });
            }
        }
        E::AuditCompleted { audit_id, summary } => {
            if let Some(a) = state.audits.get_mut(audit_id) {
                a.completed = Some((summary.clone(), meta));
                a.version += 1;
            }
        }
        E::FindingRaised {
            finding_id,
            audit_id,
            grade,
            area,
            description,
            controls,
            auditee,
        } => {
            state.findings.insert(
                finding_id.clone(),
                Finding {
                    audit_id: audit_id.clone(),
                    grade: *grade,
                    area: area.clone(),
                    description: description.clone(),
                    controls: controls.clone(),
                    auditee: auditee.clone(),
                    raised: meta,
                },
            );
        }
        E::CorrectiveActionOpened {
            action_id,
            finding_id,
            description,
            owner,
        } => {
            let finding = state.findings.get(finding_id);
            let version = state.actions.get(action_id).map_or(0, |a| a.version) + 1;
            let action = CorrectiveAction {
                finding_id: finding_id.clone(),
                grade: finding.map(|f| f.grade),
                raised_at: finding.map_or(meta.effective_at, |f| f.raised.effective_at),
                description: description.clone(),
                owner: owner.clone(),
                status: ActionStatus::Open,
                root_cause: None,
                closed: None,
                verified: None,
                version,
                opened: meta,
            };
            state.actions.insert(action_id.clone(), action);
        }
        E::RootCauseRecorded {
            action_id,
            root_cause,
        } => {
            if let Some(a) = state.actions.get_mut(action_id) {
                a.root_cause = Some((root_cause.clone(), meta));
                a.version += 1;
            }
        }
        E::CorrectiveActionClosed {
            action_id,
            resolution,
        } => {
            if let Some(a) = state.actions.get_mut(action_id) {
                a.status = ActionStatus::Closed;
                a.closed = Some((resolution.clone(), meta));
                a.version += 1;
            }
        }
        E::CorrectiveActionVerified {
            action_id,
            effective,
            note,
        } => {
            if let Some(a) = state.actions.get_mut(action_id) {
                a.status = if *effective {
                    ActionStatus::Verified
                } else {
                    ActionStatus::Open
                };
                a.verified = Some((*effective, note.clone(), meta));
                a.version += 1;
            }
        }
        E::ManagementReviewHeld {
            review_id,
            attendees,
            inputs_covered,
            decisions,
            references,
        } => {
            state.reviews.insert(
                review_id.clone(),
                Review {
                    attendees: attendees.clone(),
                    inputs: inputs_covered.iter().copied().collect(),
                    decisions: decisions.clone(),
                    references: references
                        .iter()
                        .map(|r| (r.input, r.reference.clone()))
                        .collect(),
                    closed: BTreeMap::new(),
                    held: meta,
                },
            );
        }
        E::LegalRequirementRecorded {
            requirement_id,
            title,
            jurisdiction,
            owner,
            controls,
        } => {
            let review = state
                .legal
                .get(requirement_id)
                .and_then(|r| r.review.clone());
            state.legal.insert(
                requirement_id.clone(),
                LegalRequirement {
                    title: title.clone(),
                    jurisdiction: jurisdiction.clone(),
                    owner: owner.clone(),
                    controls: controls.clone(),
                    review,
                    recorded: meta,
                },
            );
        }
        E::ComplianceReviewed {
            requirement_id,
            result,
            note,
            next_review,
        } => {
            if let Some(r) = state.legal.get_mut(requirement_id) {
                r.review = Some(ComplianceReview {
                    result: *result,
                    note: note.clone(),
                    next_review: *next_review,
                    reviewed: meta,
                });
            }
        }
        E::ExternalAuditHeld {
            audit_id,
            kind,
            body,
            start,
            end,
            major_nonconformities,
            minor_nonconformities,
            certified,
            summary,
        } => {
            state.external_audits.insert(
                audit_id.clone(),
                ExternalAudit {
                    kind: *kind,
                    body: body.clone(),
                    start: *start,
                    end: *end,
                    major_nonconformities: *major_nonconformities,
                    minor_nonconformities: *minor_nonconformities,
                    certified: *certified,
                    summary: summary.clone(),
                    held: meta,
                },
            );
        }
        E::ReviewDecisionClosed {
            review_id,
            decision,
            resolution,
        } => {
            if let Some(r) = state.reviews.get_mut(review_id) {
                r.closed.insert(
                    *decision,
                    DecisionClosure {
                        resolution: resolution.clone(),
                        closed: meta,
                    },
                );
            }
        }
        E::TrainingRecorded {
            training_id,
            person,
            course,
            completed,
            campaign,
            due,
        } => {
            state.training.insert(
                training_id.clone(),
                Training {
                    person: person.clone(),
                    course: course.clone(),
                    completed: *completed,
                    campaign: campaign.clone(),
                    due: *due,
                    updated: meta,
                },
            );
        }
        E::IncidentRecorded {
            incident_id,
            title,
            severity,
            controls,
            detected_at,
            assets,
            nonconformity,
            near_miss,
        } => {
            let version = state.incidents.get(incident_id).map_or(0, |i| i.version) + 1;
            state.incidents.insert(
                incident_id.clone(),
                Incident {
                    title: title.clone(),
                    severity: *severity,
                    controls: controls.clone(),
                    detected_at: *detected_at,
                    assets: assets.clone(),
                    nonconformity: *nonconformity,
                    near_miss: *near_miss,
                    corrective_actions: Vec::new(),
                    closed: None,
                    version,
                    recorded: meta,
                },
            );
        }
        E::IncidentClosed {
            incident_id,
            resolution,
            corrective_actions,
        } => {
            if let Some(i) = state.incidents.get_mut(incident_id) {
                i.corrective_actions = corrective_actions.clone();
                i.closed = Some((resolution.clone(), meta));
                i.version += 1;
            }
        }
        E::SupplierAssessed {
            supplier_id,
            name,
            result,
            notes,
            criticality,
            next_assessment,
        } => {
            let assessments = state
                .suppliers
                .get(supplier_id)
                .map_or(0, |s| s.assessments)
                + 1;
            state.suppliers.insert(
                supplier_id.clone(),
                Supplier {
                    name: name.clone(),
                    result: *result,
                    notes: notes.clone(),
                    criticality: *criticality,
                    next_assessment: *next_assessment,
                    assessments,
                    assessed: meta,
                },
            );
        }
        E::ContinuityTestHeld {
            test_id,
            plan,
            result,
            controls,
        } => {
            state.continuity_tests.insert(
                test_id.clone(),
                ContinuityTest {
                    plan: plan.clone(),
                    result: *result,
                    controls: controls.clone(),
                    held: meta,
                },
            );
        }
        E::AccessReviewRecorded {
            review_id,
            system,
            reviewer,
            due,
            completed,
            accounts_reviewed,
            accounts_removed,
        } => {
            state.access_reviews.insert(
                review_id.clone(),
                AccessReview {
                    system: system.clone(),
                    reviewer: reviewer.clone(),
                    due: *due,
                    completed: *completed,
                    accounts_reviewed: *accounts_reviewed,
                    accounts_removed: *accounts_removed,
                    recorded: meta,
                },
            );
        }
        E::VulnerabilityRecorded {
            vulnerability_id,
            title,
            severity,
            asset,
            detected,
            remediated,
            due,
        } => {
            state.vulnerabilities.insert(
                vulnerability_id.clone(),
                Vulnerability {
                    title: title.clone(),
                    severity: *severity,
                    asset: asset.clone(),
                    detected: *detected,
                    remediated: *remediated,
                    due: due.unwrap_or_else(|| detected.plus_days(remediation_sla_days(*severity))),
                    recorded: meta,
                },
            );
        }
        E::PatchComplianceMeasured {
            scope,
            devices_total,
            devices_compliant,
        } => {
            state.patch_compliance.insert(
                scope.trim().to_string(),
                PatchCompliance {
                    devices_total: *devices_total,
                    devices_compliant: *devices_compliant,
                    measured: meta,
                },
            );
        }
    }
}

fn enrol(state: &mut State, k: &KeyEnrolment) {
    state.keys.insert(
        key_id_of(&k.public_key),
        KeyInfo {
            subject: k.subject.clone(),
            roles: k.roles.clone(),
            revoked: None,
        },
    );
}

/// The ledger's key id: blake3 over `"isms-ledger/v1/key-id\0" || public key` (the same
/// construction as `ledger::KeyId::of_public_key`, repeated here so the fold needs no ledger).
pub fn key_id_of(public_key: &[u8; 32]) -> KeyIdBytes {
    let mut h = blake3::Hasher::new();
    h.update(b"isms-ledger/v1/key-id\0");
    h.update(public_key);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::DaySet;

    #[test]
    fn day_set_matches_a_btreeset() {
        let mut set = DaySet::default();
        let mut model = std::collections::BTreeSet::new();
        for d in [500, 10, 700, 499, -3, 10, 1000] {
            set.insert(d);
            model.insert(d);
            assert_eq!(set.first(), model.first().copied());
            assert_eq!(set.last(), model.last().copied());
        }
        for d in -70..1100 {
            assert_eq!(set.contains(d), model.contains(&d), "{d}");
        }
    }
}
