//! The `isms.ledger.v1.Registers` service: the projections' query engine over the ledger, with
//! snapshots kept in a derived sled tree (rebuildable, never part of the permanent record).

use std::sync::Arc;

use isms_proto::v1 as pb;
use isms_proto::v1::registers_server;
use ledger::{Ledger, Seq, UnixMicros};
use projections::query::ProjectorConfig;
use projections::registers::{natural_order, Readiness, Table, REGISTER_NAMES};
use projections::{oscal, Projector, Registers, State, Timestamp};
use tonic::{Request, Response, Status};

use super::admission::LedgerSource;
use super::auth::ReadAuth;
use super::status::{ledger_status, query_status};

type Engine = Projector<ledger::engine::Space, Arc<LedgerSource>>;

/// Method paths, as the read-request signature covers them.
pub mod method {
    /// `GetRegisters`.
    pub const GET_REGISTERS: &str = "/isms.ledger.v1.Registers/GetRegisters";
    /// `Diff`.
    pub const DIFF: &str = "/isms.ledger.v1.Registers/Diff";
    /// `Readiness`.
    pub const READINESS: &str = "/isms.ledger.v1.Registers/Readiness";
    /// `ExportOscal`.
    pub const EXPORT_OSCAL: &str = "/isms.ledger.v1.Registers/ExportOscal";
}

/// The Registers service.
#[derive(Debug, Clone)]
pub struct RegistersService {
    ledger: Arc<Ledger>,
    engine: Arc<Engine>,
    auth: Arc<ReadAuth>,
}

impl RegistersService {
    /// A service over `ledger`.
    pub fn new(ledger: Arc<Ledger>, auth: Arc<ReadAuth>) -> Result<Self, ledger::LedgerError> {
        let snapshots = ledger.derived("projection-snapshots")?;
        let engine = Projector::new(
            Arc::new(LedgerSource(ledger.clone())),
            snapshots,
            ProjectorConfig::default(),
        );
        Ok(RegistersService {
            ledger,
            engine: Arc::new(engine),
            auth,
        })
    }

    /// Builds, on the calling thread, what the first queries would otherwise wait for: the
    /// recorded-time snapshots up to the head and the valid-time index of bitemporal queries.
    pub fn warm(&self) -> Result<(), projections::query::SourceError> {
        let now = Timestamp(self.ledger.config().clock.now().0);
        self.engine.latest()?;
        self.engine.bitemporal(now, now)?;
        Ok(())
    }

    /// The state a query asks for, and the time its due dates are judged at.
    pub async fn state(&self, as_of: Option<pb::AsOf>) -> Result<(State, Timestamp), Status> {
        let engine = self.engine.clone();
        let ledger = self.ledger.clone();
        let point = as_of.and_then(|a| a.point);
        tokio::task::spawn_blocking(move || -> Result<(State, Timestamp), Status> {
            let q = |e: projections::query::SourceError| query_status(e.as_ref());
            Ok(match point {
                None => (engine.latest().map_err(q)?, Timestamp(UnixMicros::now().0)),
                Some(pb::as_of::Point::RecordedAtUs(t)) => {
                    let t = recorded_time(&ledger, "as_of.recorded_at_us", t)?;
                    (engine.as_of(Timestamp(t)).map_err(q)?, Timestamp(t))
                }
                Some(pb::as_of::Point::Seq(seq)) => {
                    let entry = ledger
                        .get(Seq(seq))
                        .map_err(|e| ledger_status(&e))?
                        .ok_or_else(|| {
                            Status::not_found(format!("as_of.seq: no entry at seq {seq}"))
                        })?;
                    (
                        engine.as_of_seq(seq).map_err(q)?,
                        Timestamp(entry.recorded_at.0),
                    )
                }
                Some(pb::as_of::Point::Bitemporal(b)) => {
                    check_window("as_of.bitemporal.effective_at_us", b.effective_at_us)?;
                    // 0: as known now.
                    let known_at = match b.known_at_us {
                        0 => ledger.config().clock.now().0,
                        t => recorded_time(&ledger, "as_of.bitemporal.known_at_us", t)?,
                    };
                    (
                        engine
                            .bitemporal(Timestamp(b.effective_at_us), Timestamp(known_at))
                            .map_err(q)?,
                        Timestamp(b.effective_at_us),
                    )
                }
            })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
    }

    /// The registers named in `wanted` (all when empty) as of a point: what GetRegisters
    /// answers, for callers in this process that have already admitted the reader.
    pub async fn registers(
        &self,
        as_of: Option<pb::AsOf>,
        wanted: &[String],
    ) -> Result<pb::RegistersResponse, Status> {
        if let Some(unknown) = wanted
            .iter()
            .find(|r| !REGISTER_NAMES.contains(&r.as_str()))
        {
            return Err(Status::invalid_argument(format!(
                "registers: unknown register {unknown:?} (registers are {})",
                REGISTER_NAMES.join(", ")
            )));
        }
        let (state, now) = self.state(as_of).await?;
        Ok(response(&Registers { state: &state, now }, wanted))
    }

    /// What changed in every register between two recorded times: what Diff answers.
    pub async fn diff_between(&self, from_us: i64, to_us: i64) -> Result<pb::DiffResponse, Status> {
        check_window("from_us", from_us)?;
        check_window("to_us", to_us)?;
        let to_us = not_after_today(&self.ledger, "to_us", to_us)?;
        if from_us > to_us {
            return Err(Status::invalid_argument(format!(
                "from_us: {} is after to_us {}",
                Timestamp(from_us),
                Timestamp(to_us)
            )));
        }
        let engine = self.engine.clone();
        let diffs =
            tokio::task::spawn_blocking(move || engine.diff(Timestamp(from_us), Timestamp(to_us)))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| query_status(e.as_ref()))?;
        Ok(pb::DiffResponse {
            registers: diffs
                .into_iter()
                .map(|d| pb::RegisterDiff {
                    register: d.register.to_string(),
                    added: rows_in_order(d.added),
                    removed: rows_in_order(d.removed),
                    changed: {
                        let mut changed = d.changed;
                        changed.sort_by(|a, b| natural_order(&a.0, &b.0));
                        changed
                    }
                    .into_iter()
                    .map(|(id, changes)| pb::ChangedRow {
                        id,
                        cells: changes
                            .into_iter()
                            .map(|(name, before, after)| pb::CellChange {
                                name: name.to_string(),
                                before,
                                after,
                            })
                            .collect(),
                    })
                    .collect(),
                })
                .collect(),
        })
    }

    /// The readiness checklist as of a point, each item with the entries behind its verdict.
    pub async fn readiness_at(
        &self,
        as_of: Option<pb::AsOf>,
    ) -> Result<Vec<pb::ReadinessItem>, Status> {
        let (state, now) = self.state(as_of).await?;
        Ok(readiness_items(&Registers { state: &state, now }))
    }

    /// An OSCAL document of the registers as of a point: what ExportOscal answers.
    pub async fn oscal_at(
        &self,
        as_of: Option<pb::AsOf>,
        model: oscal::Model,
    ) -> Result<pb::ExportOscalResponse, Status> {
        let (state, now) = self.state(as_of).await?;
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let lookup_failed = std::cell::Cell::new(None);
            let entry_hash = |seq: u64| match ledger.get(Seq(seq)) {
                Ok(entry) => entry.map(|e| e.hash().0),
                Err(e) => {
                    lookup_failed.set(Some(ledger_status(&e)));
                    None
                }
            };
            let genesis = ledger.genesis();
            let source = oscal::Source {
                origin: &genesis.origin,
                organisation: &genesis.name,
                entry_hash: &entry_hash,
            };
            let document = oscal::document(model, &state, now, &source);
            if let Some(status) = lookup_failed.take() {
                return Err(status);
            }
            let document = document.map_err(|e| match e {
                // The ledger holds a date OSCAL cannot carry: nothing wrong with the request.
                oscal::OscalError::DateOutOfRange(_) => Status::failed_precondition(e.to_string()),
                oscal::OscalError::MissingEntry(_) => Status::internal(e.to_string()),
            })?;
            Ok(pb::ExportOscalResponse {
                entries: state.applied,
                now_us: now.0,
                json: serde_json::to_string_pretty(&document)
                    .map_err(|e| Status::internal(e.to_string()))?,
            })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
    }

    /// The registers named in `wanted` (known names) and the readiness checklist as of one
    /// point, from one fold: what the console's overview shows.
    pub async fn overview(
        &self,
        as_of: Option<pb::AsOf>,
        wanted: &[String],
    ) -> Result<(pb::RegistersResponse, Vec<pb::ReadinessItem>), Status> {
        let (state, now) = self.state(as_of).await?;
        let registers = Registers { state: &state, now };
        Ok((response(&registers, wanted), readiness_items(&registers)))
    }
}

/// The registers named in `wanted` (all when empty) as the wire carries them; only those are
/// computed.
fn response(registers: &Registers, wanted: &[String]) -> pb::RegistersResponse {
    let tables = REGISTER_NAMES
        .iter()
        .filter(|name| wanted.is_empty() || wanted.iter().any(|r| r == *name))
        .filter_map(|name| Some(table(name, registers.table(name)?)))
        .collect();
    pb::RegistersResponse {
        entries: registers.state.applied,
        now_us: registers.now.0,
        tables,
    }
}

/// The readiness checklist as the wire carries it.
fn readiness_items(registers: &Registers) -> Vec<pb::ReadinessItem> {
    registers
        .readiness()
        .into_iter()
        .map(|i| pb::ReadinessItem {
            stage: i.stage.to_string(),
            item: i.item.to_string(),
            status: match i.status {
                Readiness::Met => "met",
                Readiness::PartlyMet => "partly_met",
                Readiness::NotMet => "not_met",
            }
            .to_string(),
            reason: i.reason,
            entries: i.entries,
        })
        .collect()
}

/// A time outside the window the ledger takes (1970-9999) is a client's mistake.
fn check_window(field: &str, t: i64) -> Result<(), Status> {
    if Timestamp(t).in_window() {
        return Ok(());
    }
    Err(Status::invalid_argument(format!(
        "{field}: {t} µs lies outside {}",
        Timestamp::WINDOW
    )))
}

/// The recorded time a query can be answered for. A time later today is answered as of now
/// (the response's `now_us` says so): "as of today" means today's register. A time after today
/// is refused: answering with today's register under a future date's label would be wrong.
fn not_after_today(ledger: &Ledger, field: &str, t: i64) -> Result<i64, Status> {
    let now = ledger.config().clock.now().0;
    let end_of_today = now - now.rem_euclid(Timestamp::DAY) + Timestamp::DAY - 1;
    if t <= now {
        return Ok(t);
    }
    if t <= end_of_today {
        return Ok(now);
    }
    Err(Status::out_of_range(format!(
        "{field}: {} is in the future; the ledger's record ends now ({}), so it cannot say \
         what the register will hold then",
        Timestamp(t),
        Timestamp(now)
    )))
}

/// A recorded time the ledger can answer for: in the window, not after today (clamped to now),
/// and not before the genesis (when nothing had been recorded, so an empty register would be
/// true but misleading).
fn recorded_time(ledger: &Ledger, field: &str, t: i64) -> Result<i64, Status> {
    check_window(field, t)?;
    let t = not_after_today(ledger, field, t)?;
    let genesis = ledger
        .get(Seq(0))
        .map_err(|e| ledger_status(&e))?
        .ok_or_else(|| Status::failed_precondition("the ledger has no genesis entry"))?;
    if t < genesis.recorded_at.0 {
        return Err(Status::out_of_range(format!(
            "{field}: {} is before this ledger began ({}); nothing was recorded then",
            Timestamp(t),
            Timestamp(genesis.recorded_at.0)
        )));
    }
    Ok(t)
}

fn cells(cells: Vec<(&'static str, String)>) -> Vec<pb::Cell> {
    cells
        .into_iter()
        .map(|(name, value)| pb::Cell {
            name: name.to_string(),
            value,
        })
        .collect()
}

/// Rows in the order people number them (A.5.2 before A.5.10), not string order.
fn rows_in_order(
    rows: impl IntoIterator<Item = (String, Vec<(&'static str, String)>)>,
) -> Vec<pb::Row> {
    let mut rows: Vec<pb::Row> = rows
        .into_iter()
        .map(|(id, c)| pb::Row {
            id,
            cells: cells(c),
        })
        .collect();
    rows.sort_by(|a, b| natural_order(&a.id, &b.id));
    rows
}

/// A register's rows as the wire carries them, in the standard's order.
pub fn table(name: &str, rows: Table) -> pb::Table {
    pb::Table {
        name: name.to_string(),
        rows: rows_in_order(rows),
    }
}

#[tonic::async_trait]
impl registers_server::Registers for RegistersService {
    async fn get_registers(
        &self,
        request: Request<pb::GetRegistersRequest>,
    ) -> Result<Response<pb::RegistersResponse>, Status> {
        self.auth.check(&request, method::GET_REGISTERS)?;
        let request = request.into_inner();
        Ok(Response::new(
            self.registers(request.as_of, &request.registers).await?,
        ))
    }

    async fn diff(
        &self,
        request: Request<pb::DiffRequest>,
    ) -> Result<Response<pb::DiffResponse>, Status> {
        self.auth.check(&request, method::DIFF)?;
        let request = request.into_inner();
        Ok(Response::new(
            self.diff_between(request.from_us, request.to_us).await?,
        ))
    }

    async fn readiness(
        &self,
        request: Request<pb::ReadinessRequest>,
    ) -> Result<Response<pb::ReadinessResponse>, Status> {
        self.auth.check(&request, method::READINESS)?;
        let items = self.readiness_at(request.into_inner().as_of).await?;
        Ok(Response::new(pb::ReadinessResponse { items }))
    }

    async fn export_oscal(
        &self,
        request: Request<pb::ExportOscalRequest>,
    ) -> Result<Response<pb::ExportOscalResponse>, Status> {
        self.auth.check(&request, method::EXPORT_OSCAL)?;
        let request = request.into_inner();
        let model = match pb::OscalModel::try_from(request.model) {
            Ok(pb::OscalModel::AssessmentResults) => oscal::Model::AssessmentResults,
            Ok(pb::OscalModel::Poam) => oscal::Model::Poam,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "model: must be OSCAL_MODEL_ASSESSMENT_RESULTS or OSCAL_MODEL_POAM, not {}",
                    request.model
                )))
            }
        };
        Ok(Response::new(self.oscal_at(request.as_of, model).await?))
    }
}
