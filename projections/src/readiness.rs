//! Certification readiness: each item of the seed's stage 1, stage 2 and surveillance
//! checklists judged from ledger state, with the entries that justify the verdict.

use crate::{
    model::*,
    registers::{Readiness, ReadinessItem, Registers, SoaStatus},
    state::{ActionStatus, RiskStatus},
};

const YEAR: i64 = 365;

/// met if `have == want > 0`, partly if `0 < have`, else not met.
fn grade(have: usize, want: usize) -> Readiness {
    match (have, want) {
        (0, _) => Readiness::NotMet,
        (h, w) if h >= w => Readiness::Met,
        _ => Readiness::PartlyMet,
    }
}

pub(crate) fn items(r: &Registers<'_>) -> Vec<ReadinessItem> {
    let s = r.state;
    let now = r.now;
    let mut out = Vec::new();
    let mut push = |stage, item, status, reason: String, entries: Vec<u64>| {
        out.push(ReadinessItem {
            stage,
            item,
            status,
            reason,
            entries,
        })
    };
    let policy = |kind: PolicyKind| {
        s.policies
            .values()
            .filter(|p| p.kind == kind)
            .map(|p| (p.published, p.approved.seq))
            .collect::<Vec<_>>()
    };
    let seqs = |v: &[(bool, u64)]| v.iter().map(|x| x.1).collect::<Vec<_>>();

    // Stage 1.
    let scope: Vec<u64> = s.scope.iter().map(|(_, m)| m.seq).collect();
    push(
        "stage_1",
        "ISMS scope documented and approved",
        grade(scope.len(), 1),
        if scope.is_empty() {
            "no scope_defined entry".into()
        } else {
            "scope defined".into()
        },
        scope.clone(),
    );
    let infosec = policy(PolicyKind::InformationSecurity);
    let published = infosec.iter().filter(|p| p.0).count();
    push(
        "stage_1",
        "Information security policy published",
        if published > 0 {
            Readiness::Met
        } else if infosec.is_empty() {
            Readiness::NotMet
        } else {
            Readiness::PartlyMet
        },
        format!(
            "{} information security policies approved, {published} published",
            infosec.len()
        ),
        seqs(&infosec),
    );
    let method = policy(PolicyKind::RiskMethodology);
    let assessed: Vec<u64> = s
        .risks
        .values()
        .filter(|x| x.inherent.is_some())
        .map(|x| x.created.seq)
        .collect();
    push(
        "stage_1",
        "Risk assessment methodology defined",
        if !method.is_empty() {
            Readiness::Met
        } else if !assessed.is_empty() {
            Readiness::PartlyMet
        } else {
            Readiness::NotMet
        },
        if method.is_empty() {
            "risks are scored with the built-in 1-5 method, but no risk methodology policy is approved".into()
        } else {
            "risk methodology policy approved".into()
        },
        seqs(&method),
    );
    push(
        "stage_1",
        "Risk assessment completed with risk register",
        grade(assessed.len(), s.risks.len()),
        format!("{} of {} risks assessed", assessed.len(), s.risks.len()),
        assessed.clone(),
    );
    // A risk whose treatment is to accept it counts once management accepted it: the guide
    // asks to "accept with documented management approval".
    let treated: Vec<u64> = s
        .risks
        .values()
        .filter(|x| x.treatment.is_some() && x.status != RiskStatus::AwaitingAcceptance)
        .map(|x| x.updated.seq)
        .collect();
    let awaiting: Vec<u64> = s
        .risks
        .values()
        .filter(|x| x.status == RiskStatus::AwaitingAcceptance)
        .map(|x| x.updated.seq)
        .collect();
    let mut reason = format!(
        "{} of {} assessed risks have a treatment",
        treated.len(),
        assessed.len()
    );
    if !awaiting.is_empty() {
        reason.push_str(&format!(
            "; {} to be accepted await management acceptance",
            awaiting.len()
        ));
    }
    push(
        "stage_1",
        "Risk treatment plan developed",
        grade(treated.len(), assessed.len().max(1)),
        reason,
        treated.into_iter().chain(awaiting).collect(),
    );
    let soa = r.soa();
    let soa_done: Vec<u64> = s
        .soa
        .values()
        .filter(|x| x.applicable.is_some())
        .map(|x| x.updated.seq)
        .collect();
    let approved = soa
        .iter()
        .filter(|x| x.status == SoaStatus::Approved)
        .count();
    push(
        "stage_1",
        "Statement of Applicability completed",
        grade(soa_done.len(), 93),
        format!(
            "{} of 93 controls assessed, {approved} approved",
            soa_done.len()
        ),
        soa_done.clone(),
    );
    let objectives: Vec<u64> = s.objectives.values().map(|o| o.set.seq).collect();
    push(
        "stage_1",
        "ISMS objectives defined with measurable targets",
        grade(objectives.len(), 1),
        format!("{} objectives with metric and target", objectives.len()),
        objectives.clone(),
    );
    let audits: Vec<u64> = s.audits.values().map(|a| a.planned.seq).collect();
    push(
        "stage_1",
        "Internal audit program established",
        grade(audits.len(), 1),
        format!("{} audits planned", audits.len()),
        audits.clone(),
    );
    let completed: Vec<u64> = s
        .audits
        .values()
        .filter_map(|a| a.completed.as_ref().map(|c| c.1.seq))
        .collect();
    push(
        "stage_1",
        "At least one full internal audit completed",
        if !completed.is_empty() {
            Readiness::Met
        } else if !audits.is_empty() {
            Readiness::PartlyMet
        } else {
            Readiness::NotMet
        },
        format!("{} of {} audits completed", completed.len(), audits.len()),
        completed.clone(),
    );
    let reviews = r.management_reviews();
    let full = reviews
        .iter()
        .filter(|x| {
            x.inputs_missing.is_empty()
                && x.outputs_missing.is_empty()
                && x.attendees_missing.is_empty()
        })
        .count();
    push(
        "stage_1",
        "Management review conducted with minutes documented",
        if full > 0 {
            Readiness::Met
        } else if !reviews.is_empty() {
            Readiness::PartlyMet
        } else {
            Readiness::NotMet
        },
        format!(
            "{} reviews, {full} with the required attendees covering every mandatory input and \
             output",
            reviews.len()
        ),
        reviews.iter().map(|x| x.seq).collect(),
    );
    let doc = policy(PolicyKind::DocumentControl);
    push(
        "stage_1",
        "Document control process in place",
        grade(doc.len(), 1),
        format!("{} document control policies approved", doc.len()),
        seqs(&doc),
    );

    // Stage 2.
    let applicable: Vec<_> = soa.iter().filter(|x| x.applicable == Some(true)).collect();
    let implemented = applicable
        .iter()
        .filter(|x| x.implementation_status == Some(ImplementationStatus::Implemented))
        .count();
    push(
        "stage_2",
        "All Annex A controls implemented per SoA",
        grade(implemented, applicable.len().max(1)),
        format!(
            "{implemented} of {} applicable controls implemented",
            applicable.len()
        ),
        soa_done.clone(),
    );
    let evidence = r.evidence();
    let operating: Vec<_> = applicable
        .iter()
        .filter_map(|c| {
            evidence
                .iter()
                .find(|e| e.control_id == c.control_id && e.span_days >= 90)
        })
        .collect();
    push(
        "stage_2",
        "Evidence of control operation for 3+ months",
        grade(operating.len(), applicable.len().max(1)),
        format!(
            "{} of {} applicable controls have evidence spanning 90 days or more",
            operating.len(),
            applicable.len()
        ),
        operating
            .iter()
            .filter_map(|e| e.latest.as_ref().map(|l| l.3))
            .collect(),
    );
    let actions: Vec<_> = s.actions.values().collect();
    let done = actions
        .iter()
        .filter(|a| a.status != ActionStatus::Open)
        .count();
    let actions_grade = if actions.is_empty() {
        if completed.is_empty() {
            Readiness::NotMet
        } else {
            Readiness::Met
        }
    } else {
        grade(done, actions.len())
    };
    push(
        "stage_2",
        "Corrective actions from internal audit tracked and closed",
        actions_grade,
        format!(
            "{done} of {} corrective actions closed or verified",
            actions.len()
        ),
        actions.iter().map(|a| a.opened.seq).collect(),
    );
    let trained = s.training.values().filter(|t| t.completed).count();
    push(
        "stage_2",
        "Security awareness training delivered and recorded",
        grade(trained, s.training.len()),
        format!(
            "{trained} of {} training records completed",
            s.training.len()
        ),
        s.training.values().map(|t| t.updated.seq).collect(),
    );
    let im = policy(PolicyKind::IncidentManagement);
    let inc = s.incidents.len();
    push(
        "stage_2",
        "Incident management process operational with records",
        match (im.is_empty(), inc == 0) {
            (false, false) => Readiness::Met,
            (true, true) => Readiness::NotMet,
            _ => Readiness::PartlyMet,
        },
        format!(
            "{} incident management policies, {inc} incidents recorded",
            im.len()
        ),
        s.incidents
            .values()
            .map(|i| i.recorded.seq)
            .chain(seqs(&im))
            .collect(),
    );
    push(
        "stage_2",
        "Supplier security assessments performed",
        grade(s.suppliers.len(), 1),
        format!("{} suppliers assessed", s.suppliers.len()),
        s.suppliers.values().map(|x| x.assessed.seq).collect(),
    );
    let passed = s
        .continuity_tests
        .values()
        .filter(|t| t.result == CheckResult::Pass)
        .count();
    push(
        "stage_2",
        "Business continuity plan tested",
        if passed > 0 {
            Readiness::Met
        } else if s.continuity_tests.is_empty() {
            Readiness::NotMet
        } else {
            Readiness::PartlyMet
        },
        format!(
            "{} continuity tests, {passed} passed",
            s.continuity_tests.len()
        ),
        s.continuity_tests.values().map(|t| t.held.seq).collect(),
    );
    let docs = [
        !scope.is_empty(),
        published > 0,
        !method.is_empty(),
        soa_done.len() == 93,
        !objectives.is_empty(),
        !completed.is_empty(),
        !reviews.is_empty(),
        !doc.is_empty(),
    ];
    push("stage_2", "All mandatory documented information available", grade(docs.iter().filter(|d| **d).count(), docs.len()),
        format!("{} of {} documents (scope, policy, risk methodology, SoA, objectives, audit, review, document control)", docs.iter().filter(|d| **d).count(), docs.len()),
        Vec::new());
    let aware = [published > 0, trained > 0 && trained == s.training.len()];
    push(
        "stage_2",
        "Employees aware of security policy and their responsibilities",
        grade(aware.iter().filter(|a| **a).count(), 2),
        format!(
            "policy published: {}; training completed: {trained} of {}",
            aware[0],
            s.training.len()
        ),
        Vec::new(),
    );

    // Surveillance.
    push(
        "surveillance",
        "All corrective actions from certification audit closed",
        actions_grade,
        format!(
            "{done} of {} corrective actions closed or verified",
            actions.len()
        ),
        actions
            .iter()
            .filter(|a| a.status == ActionStatus::Open)
            .map(|a| a.opened.seq)
            .collect(),
    );
    let recent = |t: Timestamp| t.plus_days(YEAR) >= now;
    let recent_audits: Vec<u64> = s
        .audits
        .values()
        .filter(|a| recent(a.start))
        .map(|a| a.planned.seq)
        .collect();
    push(
        "surveillance",
        "Continuous internal audit schedule maintained",
        if !recent_audits.is_empty() {
            Readiness::Met
        } else if !audits.is_empty() {
            Readiness::PartlyMet
        } else {
            Readiness::NotMet
        },
        format!("{} audits in the last 12 months", recent_audits.len()),
        recent_audits,
    );
    let recent_reviews: Vec<u64> = reviews
        .iter()
        .filter(|x| recent(x.held_at))
        .map(|x| x.seq)
        .collect();
    push(
        "surveillance",
        "Management reviews conducted per schedule",
        if !recent_reviews.is_empty() {
            Readiness::Met
        } else if !reviews.is_empty() {
            Readiness::PartlyMet
        } else {
            Readiness::NotMet
        },
        format!("{} reviews in the last 12 months", recent_reviews.len()),
        recent_reviews,
    );
    let updated: Vec<u64> = s
        .risks
        .values()
        .filter(|x| recent(x.updated.recorded_at) && x.status != RiskStatus::Closed)
        .map(|x| x.updated.seq)
        .collect();
    push(
        "surveillance",
        "Risk register updated with new threats and changes",
        if !updated.is_empty() {
            Readiness::Met
        } else if !s.risks.is_empty() {
            Readiness::PartlyMet
        } else {
            Readiness::NotMet
        },
        format!("{} open risks updated in the last 12 months", updated.len()),
        updated,
    );
    let with_evidence = evidence
        .iter()
        .filter(|e| e.coverage_3_months > 0.0)
        .count();
    // Objectives measured in the last 3 months.
    let measured: Vec<u64> = s
        .objectives
        .values()
        .filter_map(|o| o.measurements.last())
        .filter(|m| m.measured.effective_at.plus_days(92) >= now)
        .map(|m| m.measured.seq)
        .collect();
    push(
        "surveillance",
        "Metrics demonstrate ISMS effectiveness",
        match (
            objectives.is_empty(),
            with_evidence == 0 && measured.is_empty(),
        ) {
            (false, false) => Readiness::Met,
            (true, true) => Readiness::NotMet,
            _ => Readiness::PartlyMet,
        },
        format!(
            "{} objectives, {} measured in the last 3 months; {with_evidence} controls with \
             evidence in the last 3 months",
            objectives.len(),
            measured.len()
        ),
        objectives.into_iter().chain(measured).collect(),
    );
    push(
        "surveillance",
        "Changes to ISMS scope documented",
        grade(scope.len(), 1),
        if scope.is_empty() {
            "no scope_defined entry".into()
        } else {
            "the latest scope_defined entry is the documented scope".into()
        },
        scope,
    );
    out
}
