//! Why an event is refused: one `Error` enum whose messages name the field and the rule, and
//! the gRPC status each variant becomes (as our own `ErrorCode`, so this crate needs no tonic).

/// The gRPC status code an [`Error`] becomes at the server edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed input, out of range values, unknown controls, missing justifications.
    InvalidArgument,
    /// A role or separation-of-duties rule.
    PermissionDenied,
    /// An expected-version mismatch or an impossible state transition.
    FailedPrecondition,
}

/// An event refused before it is accepted. A refused event leaves nothing behind: rules are
/// checked on the current state and only an accepted event is applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body is not a valid `EventBody`, has no payload, or a field has the wrong shape
    /// (bad length, unknown enum value). gRPC: InvalidArgument.
    #[error("{field}: {rule}")]
    Malformed {
        /// The offending field, e.g. `risk_assessed.risk_id`.
        field: String,
        /// What the field must be.
        rule: String,
    },
    /// A likelihood or impact outside 1..=5, or a stated score that is not likelihood x
    /// impact. gRPC: InvalidArgument.
    #[error("{field}: {rule} (got {got})")]
    OutOfRange {
        /// The offending field, e.g. `risk_assessed.likelihood`.
        field: String,
        /// The rule, e.g. `must be 1..=5`.
        rule: String,
        /// The value received.
        got: i64,
    },
    /// A control id that is not in Annex A:2022 (2013-style ids get a message that says so).
    /// gRPC: InvalidArgument.
    #[error("{field}: {id:?} {explanation}")]
    UnknownControl {
        /// The offending field, e.g. `controls[1]`.
        field: String,
        /// The id as received.
        id: String,
        /// Why it is not a 2022 control, with the valid ranges.
        explanation: String,
    },
    /// A required field is empty: an excluded control without a justification, accepting a
    /// risk above the appetite without one, and the like. gRPC: InvalidArgument.
    #[error("{field}: required ({rule})")]
    MissingField {
        /// The empty field.
        field: String,
        /// The rule that requires it.
        rule: String,
    },
    /// The submitting key holds none of the roles allowed to append this kind of event.
    /// gRPC: PermissionDenied.
    #[error("role: {kind} may be appended only by a key with role {allowed}; the key of {subject:?} holds [{held}]")]
    RoleNotAllowed {
        /// The event kind, e.g. `risk_accepted`.
        kind: &'static str,
        /// The roles that may append it, e.g. `management`.
        allowed: String,
        /// Who holds the key.
        subject: String,
        /// The key's roles.
        held: String,
    },
    /// A separation-of-duties rule: who closed an action cannot verify it; an auditor cannot
    /// raise findings on an area they own. gRPC: PermissionDenied.
    #[error("separation of duties: {rule}")]
    DutyConflict {
        /// The rule and who broke it.
        rule: String,
    },
    /// `expected_version` does not match the entity's current version. gRPC:
    /// FailedPrecondition.
    #[error("expected_version: {entity} is at version {found}, not {expected}")]
    VersionMismatch {
        /// The entity, e.g. `risk RISK-001`.
        entity: String,
        /// The version the submitter expected.
        expected: u64,
        /// The version the entity has.
        found: u64,
    },
    /// The entity is not in a state that allows this event (closing an action that is not
    /// open, assessing a risk that was never identified, identifying one twice). gRPC:
    /// FailedPrecondition.
    #[error("{field}: cannot {action} {entity}: {rule}")]
    InvalidTransition {
        /// The field that names the entity, e.g. `corrective_action_closed.action_id`.
        field: String,
        /// What was attempted, e.g. `close`.
        action: &'static str,
        /// The entity, e.g. `corrective action CA-7`.
        entity: String,
        /// Why not, e.g. `it is closed, not open`.
        rule: String,
    },
}

impl Error {
    /// The gRPC status code this error becomes.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed { .. }
            | Self::OutOfRange { .. }
            | Self::UnknownControl { .. }
            | Self::MissingField { .. } => ErrorCode::InvalidArgument,
            Self::RoleNotAllowed { .. } | Self::DutyConflict { .. } => ErrorCode::PermissionDenied,
            Self::VersionMismatch { .. } | Self::InvalidTransition { .. } => {
                ErrorCode::FailedPrecondition
            }
        }
    }

    pub(crate) fn malformed(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Malformed {
            field: field.into(),
            rule: rule.into(),
        }
    }

    pub(crate) fn missing(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::MissingField {
            field: field.into(),
            rule: rule.into(),
        }
    }
}
