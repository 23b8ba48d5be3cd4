//! Builders of plausible events and histories for tests, property tests and benches. Not
//! used by production code; public so the benches and integration tests can share it.

use crate::{
    catalog::{catalog, ControlId},
    model::*,
    query::RawEntry,
    state::key_id_of,
    wire::{encode_to_vec, BodyHeader},
};

/// A person or system with a key, for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// A made-up public key (tests never sign: the ledger checks signatures, not the fold).
    pub public_key: [u8; 32],
    /// Who.
    pub subject: Subject,
    /// Roles.
    pub roles: Vec<Role>,
}

impl Actor {
    /// An actor whose public key is derived from its name.
    pub fn new(subject: &str, roles: &[Role]) -> Self {
        Self {
            public_key: *blake3::hash(subject.as_bytes()).as_bytes(),
            subject: Subject(subject.to_owned()),
            roles: roles.to_vec(),
        }
    }

    /// The ledger key id of this actor's key.
    pub fn key_id(&self) -> KeyIdBytes {
        key_id_of(&self.public_key)
    }

    /// The enrolment event for this actor.
    pub fn enrolment(&self) -> KeyEnrolment {
        KeyEnrolment {
            public_key: self.public_key,
            subject: self.subject.clone(),
            roles: self.roles.clone(),
        }
    }

    /// As a rules submitter.
    pub fn submitter(&self) -> crate::rules::Submitter {
        crate::rules::Submitter {
            subject: self.subject.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// A control id from a literal known to be valid.
pub fn c(id: &str) -> ControlId {
    ControlId::parse(id).expect("test control ids are valid")
}

fn l(v: u32) -> Likelihood {
    Likelihood::parse("l", v).expect("1..=5")
}

fn i(v: u32) -> Impact {
    Impact::parse("i", v).expect("1..=5")
}

fn id<T>(f: fn(&str, &str) -> Result<T, crate::Error>, s: &str) -> T {
    f("id", s).expect("non-empty id")
}

/// One event of every kind, with plausible fields.
pub fn sample_events() -> Vec<Event> {
    let alice = Actor::new("alice", &[Role::Admin]);
    vec![
        Event::Genesis {
            name: "Acme".into(),
            admins: vec![alice.enrolment()],
        },
        Event::KeyEnrolled(Actor::new("bob", &[Role::RiskOwner, Role::Reader]).enrolment()),
        Event::KeyRevoked {
            key_id: alice.key_id(),
            reason: "left".into(),
        },
        Event::ArtifactErased {
            blake3: [7; 32],
            reason: "GDPR".into(),
        },
        Event::LedgerKeyRotated {
            new_public_key: [8; 32],
            old_key_signature: vec![1; 64],
            new_key_signature: vec![2; 64],
            reason: "yearly rotation".into(),
        },
        Event::ScopeDefined(Scope {
            organization: "Acme".into(),
            scope_statement: "SaaS".into(),
            excluded: vec!["DC".into()],
            exclusion_justification: "AWS".into(),
            ..Default::default()
        }),
        Event::PolicyApproved {
            policy_id: id(PolicyId::parse, "POL-1"),
            title: "Information security policy".into(),
            kind: PolicyKind::InformationSecurity,
            version: "1.0".into(),
            published: true,
            next_review: Some(Timestamp(9)),
        },
        Event::ObjectiveSet {
            objective_id: id(ObjectiveId::parse, "OBJ-1"),
            description: "Patch fast".into(),
            metric: "critical patch age".into(),
            target: "< 30 days".into(),
        },
        Event::ObjectiveMeasured {
            objective_id: id(ObjectiveId::parse, "OBJ-1"),
            value: "12 days".into(),
            note: "Q1".into(),
        },
        Event::AssetRegistered {
            asset_id: id(AssetId::parse, "AS-1"),
            name: "Customer database".into(),
            asset_type: "data".into(),
            owner: "CTO".into(),
            classification: "confidential".into(),
            location: "AWS eu-west-1".into(),
            retired: false,
        },
        Event::RiskIdentified {
            risk_id: id(RiskId::parse, "RISK-001"),
            asset: "Customer database".into(),
            threat: "SQL injection attack".into(),
            vulnerability: "Insufficient input validation".into(),
            risk_owner: "CTO".into(),
        },
        Event::RiskAssessed {
            risk_id: id(RiskId::parse, "RISK-001"),
            likelihood: l(3),
            impact: i(4),
        },
        Event::RiskTreatmentDecided {
            risk_id: id(RiskId::parse, "RISK-001"),
            treatment: Treatment::Mitigate,
            controls: vec![c("A.8.28"), c("A.8.8")],
            plan: "WAF".into(),
        },
        Event::RiskRescored {
            risk_id: id(RiskId::parse, "RISK-001"),
            likelihood: l(1),
            impact: i(4),
            reason: "WAF".into(),
        },
        Event::RiskAccepted {
            risk_id: id(RiskId::parse, "RISK-001"),
            justification: String::new(),
        },
        Event::RiskDetailsChanged {
            risk_id: id(RiskId::parse, "RISK-001"),
            asset: "Customer database (EU)".into(),
            threat: "SQL injection attack".into(),
            vulnerability: "Insufficient input validation".into(),
            risk_owner: "CISO".into(),
            reason: "owner changed".into(),
        },
        Event::RiskClosed {
            risk_id: id(RiskId::parse, "RISK-001"),
            reason: "asset retired".into(),
        },
        Event::ControlApplicabilitySet {
            control_id: c("A.7.1"),
            applicable: false,
            justification: "No data centers".into(),
            implementation: String::new(),
            owner: "carol".into(),
        },
        Event::ControlApplicabilitySet {
            control_id: c("A.5.15"),
            applicable: true,
            justification: "Required for data protection".into(),
            implementation: "RBAC via Okta".into(),
            owner: "carol".into(),
        },
        Event::ControlApproved {
            control_ids: vec![c("A.5.15")],
            soa_version: "1.0".into(),
        },
        Event::ImplementationStatusChanged {
            control_id: c("A.5.15"),
            status: ImplementationStatus::Implemented,
            note: String::new(),
        },
        Event::EvidenceSubmitted {
            evidence_id: id(EvidenceId::parse, "EV-1"),
            controls: vec![c("A.5.15")],
            artifact_blake3: Some([1; 32]),
            result: CheckResult::Pass,
            collected_at: Timestamp(5),
            summary: "access review".into(),
        },
        Event::AuditPlanned {
            audit_id: id(AuditId::parse, "IA-1"),
            scope: "Clauses 4-10".into(),
            auditor: "dave".into(),
            start: Timestamp(1),
            end: Timestamp(2),
            areas: vec![AuditArea {
                area: "Access Control (A.5.15)".into(),
                auditee: "IT Security Team".into(),
                evidence_requested: vec!["records".into()],
            }],
        },
        Event::FindingRaised {
            finding_id: id(FindingId::parse, "F-1"),
            audit_id: id(AuditId::parse, "IA-1"),
            grade: FindingGrade::MajorNonconformity,
            area: "Access Control (A.5.15)".into(),
            description: "no reviews".into(),
            controls: vec![c("A.5.15")],
            auditee: "IT Security Team".into(),
        },
        Event::AuditCompleted {
            audit_id: id(AuditId::parse, "IA-1"),
            summary: "done".into(),
        },
        Event::CorrectiveActionOpened {
            action_id: id(ActionId::parse, "CA-1"),
            finding_id: id(FindingId::parse, "F-1"),
            description: "run reviews".into(),
            owner: "carol".into(),
        },
        Event::RootCauseRecorded {
            action_id: id(ActionId::parse, "CA-1"),
            root_cause: "no owner".into(),
        },
        Event::CorrectiveActionClosed {
            action_id: id(ActionId::parse, "CA-1"),
            resolution: "reviews run".into(),
        },
        Event::CorrectiveActionVerified {
            action_id: id(ActionId::parse, "CA-1"),
            effective: true,
            note: String::new(),
        },
        Event::ManagementReviewHeld {
            review_id: id(ReviewId::parse, "MR-1"),
            attendees: vec!["CEO".into()],
            inputs_covered: vec![ReviewInput::AuditResults, ReviewInput::RiskResults],
            decisions: vec![(ReviewOutput::Resources, "hire".into())],
            references: vec![InputReference {
                input: ReviewInput::AuditResults,
                reference: "IA-1 report".into(),
            }],
        },
        Event::LegalRequirementRecorded {
            requirement_id: id(RequirementId::parse, "LEG-GDPR"),
            title: "GDPR".into(),
            jurisdiction: "EU".into(),
            owner: "DPO".into(),
            controls: vec![c("A.5.34")],
        },
        Event::ComplianceReviewed {
            requirement_id: id(RequirementId::parse, "LEG-GDPR"),
            result: CheckResult::Pass,
            note: "records of processing up to date".into(),
            next_review: Some(Timestamp(30)),
        },
        Event::ExternalAuditHeld {
            audit_id: id(AuditId::parse, "CB-2025-S2"),
            kind: ExternalAuditKind::Stage2,
            body: "Cert Body Ltd".into(),
            start: Timestamp(20),
            end: Timestamp(21),
            major_nonconformities: 0,
            minor_nonconformities: 2,
            certified: true,
            summary: "recommended for certification".into(),
        },
        Event::ReviewDecisionClosed {
            review_id: id(ReviewId::parse, "MR-1"),
            decision: 1,
            resolution: "engineer hired".into(),
        },
        Event::TrainingRecorded {
            training_id: id(TrainingId::parse, "TR-1"),
            person: "erin".into(),
            course: "security awareness".into(),
            completed: true,
            campaign: "2025".into(),
            due: Some(Timestamp(8)),
        },
        Event::IncidentRecorded {
            incident_id: id(IncidentId::parse, "INC-1"),
            title: "phish".into(),
            severity: Severity::High,
            controls: vec![c("A.6.3")],
            detected_at: Some(Timestamp(3)),
            assets: vec!["AS-1".into()],
            nonconformity: true,
            near_miss: false,
        },
        Event::IncidentClosed {
            incident_id: id(IncidentId::parse, "INC-1"),
            resolution: "reset".into(),
            corrective_actions: vec![id(ActionId::parse, "CA-1")],
        },
        Event::SupplierAssessed {
            supplier_id: id(SupplierId::parse, "SUP-1"),
            name: "AWS".into(),
            result: CheckResult::Pass,
            notes: "ISO cert".into(),
            criticality: Some(Severity::High),
            next_assessment: Some(Timestamp(10)),
        },
        Event::ContinuityTestHeld {
            test_id: id(TestId::parse, "BCP-1"),
            plan: "failover".into(),
            result: CheckResult::Pass,
            controls: vec![c("A.5.30")],
        },
    ]
}

/// A small deterministic PRNG (splitmix64), so benches and tests need no `rand`.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The actors of synthetic histories.
pub fn synthetic_actors() -> Vec<Actor> {
    vec![
        Actor::new("admin", &[Role::Admin]),
        Actor::new("scanner", &[Role::Agent]),
        Actor::new("rita", &[Role::RiskOwner]),
        Actor::new("carl", &[Role::ControlOwner]),
        Actor::new("ada", &[Role::Auditor]),
        Actor::new("mona", &[Role::Management]),
    ]
}

/// The start of synthetic time: 2025-01-01.
pub fn epoch() -> Timestamp {
    Timestamp::from_date(2025, 1, 1)
}

/// A random but plausible history of `n` entries: a genesis enrolling
/// [`synthetic_actors`], then mostly evidence with risk, SoA, audit and action events over a
/// bounded set of entities, recorded a few minutes apart and often backdated. The events are
/// not all valid under the rules (folds do not need them to be); `encoded` decides whether
/// bodies are protobuf bytes (true) or left empty with the event returned alongside.
pub fn synthetic_history(n: usize, seed: u64) -> Vec<(RawEntry, Envelope)> {
    let mut rng = Rng::new(seed);
    let actors = synthetic_actors();
    let mut out = Vec::with_capacity(n);
    let mut t = epoch().0;
    let controls = catalog();
    for seq in 0..n as u64 {
        t += 1_000_000 * (1 + rng.below(600) as i64);
        let backdate = if rng.below(4) == 0 {
            rng.below(30) as i64 * Timestamp::DAY
        } else {
            0
        };
        let effective_at = Timestamp(t - backdate);
        let (actor, event) = if seq == 0 {
            (
                &actors[0],
                Event::Genesis {
                    name: "synthetic".into(),
                    admins: actors.iter().map(Actor::enrolment).collect(),
                },
            )
        } else {
            random_event(&mut rng, &actors, controls, Timestamp(t))
        };
        let envelope = Envelope {
            event_id: format!("e{seq}"),
            effective_at,
            expected_version: None,
            artifacts: Vec::new(),
            event,
        };
        let header = BodyHeader {
            event_id: envelope.event_id.clone(),
            effective_at,
            client_time: Timestamp(t),
            ..Default::default()
        };
        let body = encode_to_vec(&header, &envelope.event);
        out.push((
            RawEntry {
                seq,
                recorded_at: Timestamp(t),
                key_id: actor.key_id(),
                body,
            },
            envelope,
        ));
    }
    out
}

fn random_event<'a>(
    rng: &mut Rng,
    actors: &'a [Actor],
    controls: &[crate::catalog::Control],
    now: Timestamp,
) -> (&'a Actor, Event) {
    let control = |rng: &mut Rng| controls[rng.below(controls.len() as u64) as usize].id;
    let risk = |rng: &mut Rng| RiskId(format!("RISK-{:03}", rng.below(200)));
    let action = |rng: &mut Rng| ActionId(format!("CA-{}", rng.below(100)));
    let level = |rng: &mut Rng| 1 + rng.below(5) as u32;
    match rng.below(20) {
        0 => (
            &actors[2],
            Event::RiskIdentified {
                risk_id: risk(rng),
                asset: "asset".into(),
                threat: "threat".into(),
                vulnerability: "vuln".into(),
                risk_owner: "rita".into(),
            },
        ),
        1 => (
            &actors[2],
            Event::RiskAssessed {
                risk_id: risk(rng),
                likelihood: l(level(rng)),
                impact: i(level(rng)),
            },
        ),
        2 => (
            &actors[2],
            Event::RiskRescored {
                risk_id: risk(rng),
                likelihood: l(level(rng)),
                impact: i(level(rng)),
                reason: String::new(),
            },
        ),
        3 => (
            &actors[2],
            Event::RiskTreatmentDecided {
                risk_id: risk(rng),
                treatment: Treatment::Mitigate,
                controls: vec![control(rng), control(rng)],
                plan: String::new(),
            },
        ),
        4 => {
            let applicable = rng.below(8) != 0;
            (
                &actors[3],
                Event::ControlApplicabilitySet {
                    control_id: control(rng),
                    applicable,
                    justification: "because".into(),
                    implementation: format!("impl {}", rng.below(10)),
                    owner: "carl".into(),
                },
            )
        }
        5 => (
            &actors[3],
            Event::ImplementationStatusChanged {
                control_id: control(rng),
                status: [
                    ImplementationStatus::Planned,
                    ImplementationStatus::InProgress,
                    ImplementationStatus::Implemented,
                ][rng.below(3) as usize],
                note: String::new(),
            },
        ),
        6 => (
            &actors[5],
            Event::ControlApproved {
                control_ids: vec![control(rng)],
                soa_version: format!("1.{}", rng.below(9)),
            },
        ),
        7 => {
            let n = rng.below(30);
            (
                &actors[4],
                Event::FindingRaised {
                    finding_id: FindingId(format!("F-{n}")),
                    audit_id: AuditId("IA-1".into()),
                    grade: [
                        FindingGrade::MajorNonconformity,
                        FindingGrade::MinorNonconformity,
                        FindingGrade::Observation,
                    ][rng.below(3) as usize],
                    area: "area".into(),
                    description: String::new(),
                    controls: vec![control(rng)],
                    auditee: "team".into(),
                },
            )
        }
        8 => (
            &actors[3],
            Event::CorrectiveActionOpened {
                action_id: action(rng),
                finding_id: FindingId(format!("F-{}", rng.below(30))),
                description: String::new(),
                owner: "carl".into(),
            },
        ),
        9 => (
            &actors[3],
            Event::CorrectiveActionClosed {
                action_id: action(rng),
                resolution: "done".into(),
            },
        ),
        10 => (
            &actors[4],
            Event::CorrectiveActionVerified {
                action_id: action(rng),
                effective: rng.below(4) != 0,
                note: String::new(),
            },
        ),
        11 => (
            &actors[4],
            Event::AuditPlanned {
                audit_id: AuditId(format!("IA-{}", rng.below(4))),
                scope: "all".into(),
                auditor: "ada".into(),
                start: now,
                end: now.plus_days(5),
                areas: Vec::new(),
            },
        ),
        _ => (
            &actors[1],
            Event::EvidenceSubmitted {
                evidence_id: EvidenceId(format!("EV-{}", rng.next_u64())),
                controls: vec![control(rng)],
                artifact_blake3: None,
                result: if rng.below(10) == 0 {
                    CheckResult::Fail
                } else {
                    CheckResult::Pass
                },
                collected_at: Timestamp(now.0 - rng.below(7) as i64 * Timestamp::DAY),
                summary: String::new(),
            },
        ),
    }
}

/// A ledger-less harness for given/when/then tests: appends go through the real
/// [`crate::Validator`] (decode, rules, apply) and accepted bodies are kept as entries, so
/// tests can also run the query engine over them.
#[derive(Debug)]
pub struct Harness {
    /// The validator holding current state.
    pub validator: crate::Validator,
    /// Accepted entries.
    pub entries: Vec<RawEntry>,
    /// The clock: each append is recorded one minute after the previous one.
    pub now: Timestamp,
}

impl Harness {
    /// A ledger whose genesis enrols `actors`, starting at [`epoch`].
    pub fn new(actors: &[&Actor]) -> Self {
        let mut h = Self {
            validator: crate::Validator::new(),
            entries: Vec::new(),
            now: epoch(),
        };
        let ledger = Actor::new("ledger", &[Role::Admin]);
        let genesis = Event::Genesis {
            name: "test".into(),
            admins: actors.iter().map(|a| a.enrolment()).collect(),
        };
        h.append(&ledger, genesis).expect("genesis is accepted");
        h
    }

    /// Appends `event` by `who`, effective now.
    pub fn append(&mut self, who: &Actor, event: Event) -> Result<(), crate::Error> {
        let header = BodyHeader {
            effective_at: self.now.plus_days(0),
            ..Default::default()
        };
        self.append_with(who, header, event)
    }

    /// Appends with a custom header (effective time, expected version). The recorded time
    /// advances one minute first.
    pub fn append_with(
        &mut self,
        who: &Actor,
        mut header: BodyHeader,
        event: Event,
    ) -> Result<(), crate::Error> {
        self.now = Timestamp(self.now.0 + 60_000_000);
        if header.effective_at == Timestamp::default() {
            header.effective_at = self.now;
        }
        let seq = self.entries.len() as u64;
        header.event_id = format!("e{seq}");
        let body = encode_to_vec(&header, &event);
        self.validator
            .admit(seq, self.now, &who.submitter(), &body)?;
        self.entries.push(RawEntry {
            seq,
            recorded_at: self.now,
            key_id: who.key_id(),
            body,
        });
        Ok(())
    }

    /// Moves the clock forward.
    pub fn advance_days(&mut self, days: i64) {
        self.now = self.now.plus_days(days);
    }

    /// The current state.
    pub fn state(&self) -> &crate::State {
        self.validator.state()
    }
}
