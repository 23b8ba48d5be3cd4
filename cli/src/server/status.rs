//! How refusals become gRPC statuses: the codes DESIGN.md fixes, with messages that name the
//! field and the rule.

use ledger::{AppendError, LedgerError};
use tonic::{Code, Status};

fn code_of(code: ledger::Code) -> Code {
    match code {
        ledger::Code::InvalidArgument => Code::InvalidArgument,
        ledger::Code::Unauthenticated => Code::Unauthenticated,
        ledger::Code::PermissionDenied => Code::PermissionDenied,
        ledger::Code::AlreadyExists => Code::AlreadyExists,
        ledger::Code::FailedPrecondition => Code::FailedPrecondition,
        ledger::Code::NotFound => Code::NotFound,
        ledger::Code::Unavailable => Code::Unavailable,
        ledger::Code::DataLoss => Code::DataLoss,
        // A code added to the ledger later that this edge does not know yet.
        _ => Code::Internal,
    }
}

fn projections_code(code: projections::ErrorCode) -> Code {
    match code {
        projections::ErrorCode::InvalidArgument => Code::InvalidArgument,
        projections::ErrorCode::PermissionDenied => Code::PermissionDenied,
        projections::ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        _ => Code::Internal,
    }
}

/// The status of a refused append. ISMS rule refusals (`Rejected`) carry the projections error
/// whole, which knows its own code.
pub fn append_status(error: &AppendError) -> Status {
    if let AppendError::Rejected(rejection) = error {
        if let Some(rule) = rejection.downcast_ref::<projections::Error>() {
            return Status::new(projections_code(rule.code()), rule.to_string());
        }
    }
    Status::new(code_of(error.code()), error.to_string())
}

/// The status of a failed read.
pub fn ledger_status(error: &LedgerError) -> Status {
    Status::new(code_of(error.code()), error.to_string())
}

/// The status of a projections query failure (the store underneath failed).
pub fn query_status(error: &(dyn std::error::Error + Send + Sync)) -> Status {
    Status::unavailable(format!("registers: {error}"))
}
