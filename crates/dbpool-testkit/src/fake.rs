//! A scripted fake `Backend` and `BackendFactory` for tests of the logic above the
//! backends (breaker, retry, failover, call dispatch, Flight): each call takes the next
//! step scripted for its verb, else the fake's default step. A step answers or fails,
//! after a delay on tokio's clock (paused time drives it) or once a gate is released.
use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{
    Backend, BackendFactory, BatchOutcome, BulkInsert, Error, Executor, Param, PoolState,
    QueryStream, Result, Statement, StatementResult, Transaction, TxOptions,
};
use futures::stream::{self, StreamExt};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The calls the fake tells apart; a transaction's calls count under the same verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// `query`.
    Query,
    /// `schema`.
    Schema,
    /// `execute`.
    Execute,
    /// `execute_batch`.
    Batch,
    /// `begin`.
    Begin,
    /// A transaction's `commit`.
    Commit,
    /// A transaction's `rollback`.
    Rollback,
    /// `bulk_insert`.
    BulkInsert,
    /// `health_check`.
    Health,
}

/// A gate scripted calls wait at until it is released: a call that hangs.
#[derive(Clone, Default)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every call waiting at the gate (and every later one) through.
    pub fn release(&self) {
        self.0.send_replace(true);
    }

    async fn pass(&self) {
        // The sender lives in `self`, so waiting cannot fail.
        let _ = self.0.subscribe().wait_for(|open| *open).await;
    }
}

type MakeError = Arc<dyn Fn() -> Error + Send + Sync>;

/// What one call does.
#[derive(Clone)]
pub struct Step {
    delay: Duration,
    gate: Option<Gate>,
    outcome: std::result::Result<u64, MakeError>,
}

impl Step {
    /// Succeeds: a query returns `n` rows (one Int64 column `n` holding 0..n), execute
    /// and each statement of a batch report `n` rows affected.
    pub fn ok(n: u64) -> Step {
        Step {
            delay: Duration::ZERO,
            gate: None,
            outcome: Ok(n),
        }
    }

    /// Fails with the error `make` builds, once per call (a default step fails every call).
    pub fn fail(make: impl Fn() -> Error + Send + Sync + 'static) -> Step {
        Step {
            outcome: Err(Arc::new(make)),
            ..Step::ok(0)
        }
    }

    /// Fails as a database that cannot be reached.
    pub fn down() -> Step {
        Step::fail(|| {
            Error::unavailable(
                dbpool_core::UnavailableCause::Connect,
                "connection refused (fake)",
            )
        })
    }

    /// Waits `delay` on tokio's clock first.
    pub fn after(self, delay: Duration) -> Step {
        Step { delay, ..self }
    }

    /// Waits until `gate` is released first.
    pub fn until(self, gate: &Gate) -> Step {
        Step {
            gate: Some(gate.clone()),
            ..self
        }
    }

    async fn run(self) -> Result<u64> {
        if let Some(gate) = &self.gate {
            gate.pass().await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.outcome.map_err(|make| make())
    }
}

struct Shared {
    kind: BackendKind,
    steps: Mutex<(HashMap<Verb, VecDeque<Step>>, Step)>,
    state: Mutex<PoolState>,
    calls: watch::Sender<BTreeMap<Verb, u64>>,
    in_flight: AtomicU32,
    statements: Mutex<Vec<String>>,
}

/// Counts a call (or a transaction, or an open stream) as in flight until dropped.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

impl Shared {
    /// Counts the call, takes its step and runs it; the guard is held while it runs.
    async fn call(self: &Arc<Self>, verb: Verb) -> (Result<u64>, InFlight) {
        self.in_flight.fetch_add(1, SeqCst);
        let guard = InFlight(self.clone());
        self.calls.send_modify(|c| *c.entry(verb).or_default() += 1);
        let step = {
            let mut steps = self.steps.lock();
            let queued = steps.0.get_mut(&verb).and_then(VecDeque::pop_front);
            queued.unwrap_or_else(|| steps.1.clone())
        };
        (step.run().await, guard)
    }

    async fn query(self: &Arc<Self>, verb: Verb, batch_size: usize) -> Result<QueryStream> {
        let (result, guard) = self.call(verb).await;
        let schema = rows_schema();
        let rows = result? as i64;
        let chunk = batch_size.max(1) as i64;
        let batches: Vec<Result<RecordBatch>> = (0..rows)
            .step_by(chunk as usize)
            .map(|from| {
                let values = Int64Array::from_iter_values(from..rows.min(from + chunk));
                Ok(RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(values)],
                )?)
            })
            .collect();
        // The stream holds the "connection" until it is dropped, as a pooled one does.
        let batches = stream::iter(batches)
            .map(move |b| {
                let _held = &guard;
                b
            })
            .boxed();
        Ok(QueryStream { schema, batches })
    }
}

/// The schema of every result of the fake: one Int64 column `n`.
pub fn rows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
}

/// A fake database; clones share one script, counters and state.
#[derive(Clone)]
pub struct Fake(Arc<Shared>);

impl Fake {
    /// A fake of this kind whose calls all succeed with `Step::ok(1)` until scripted;
    /// it reports one idle connection of one and a closed circuit.
    pub fn new(kind: BackendKind) -> Fake {
        Fake(Arc::new(Shared {
            kind,
            steps: Mutex::new((HashMap::new(), Step::ok(1))),
            state: Mutex::new(PoolState {
                size: 1,
                idle: 1,
                max_size: 1,
                ..PoolState::default()
            }),
            calls: watch::Sender::new(BTreeMap::new()),
            in_flight: AtomicU32::new(0),
            statements: Mutex::new(Vec::new()),
        }))
    }

    /// Queues `step` for the next call of `verb` that has no earlier step queued.
    pub fn then(&self, verb: Verb, step: Step) -> &Fake {
        self.0
            .steps
            .lock()
            .0
            .entry(verb)
            .or_default()
            .push_back(step);
        self
    }

    /// What calls do when nothing is queued for their verb (e.g. `Step::down()` while
    /// the database is down, `Step::ok(1)` once it is back).
    pub fn set_default(&self, step: Step) -> &Fake {
        self.0.steps.lock().1 = step;
        self
    }

    /// Changes the pool state the fake reports (e.g. its circuit).
    pub fn set_state(&self, change: impl FnOnce(&mut PoolState)) -> &Fake {
        change(&mut self.0.state.lock());
        self
    }

    /// How many calls of `verb` started so far.
    pub fn calls(&self, verb: Verb) -> u64 {
        self.0.calls.borrow().get(&verb).copied().unwrap_or(0)
    }

    /// Waits until `n` calls of `verb` have started (the event, not a time).
    pub async fn reached(&self, verb: Verb, n: u64) {
        let mut rx = self.0.calls.subscribe();
        let _ = rx
            .wait_for(|c| c.get(&verb).copied().unwrap_or(0) >= n)
            .await;
    }

    /// The SQL of every statement the fake was given (queries, schemas, executes, each
    /// statement of a batch), in order: what reached the database after any rewrite.
    pub fn statements(&self) -> Vec<String> {
        self.0.statements.lock().clone()
    }

    fn note(&self, sql: &str) {
        self.0.statements.lock().push(sql.to_string());
    }

    /// Calls running, open transactions and query streams not yet dropped.
    pub fn in_flight(&self) -> u32 {
        self.0.in_flight.load(SeqCst)
    }

    /// The fake as the backend a pool holds.
    pub fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(self.clone())
    }
}

/// The statement verbs of the fake, on a pool and in a transaction alike.
#[async_trait]
impl Executor for Fake {
    async fn query(&self, sql: &str, _: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        self.note(sql);
        self.0.query(Verb::Query, batch_size).await
    }

    async fn schema(&self, sql: &str, _: Vec<Param>) -> Result<SchemaRef> {
        self.note(sql);
        self.0.call(Verb::Schema).await.0.map(|_| rows_schema())
    }

    async fn execute(&self, sql: &str, _: Vec<Param>) -> Result<u64> {
        self.note(sql);
        self.0.call(Verb::Execute).await.0
    }

    async fn bulk_insert(&self, _: BulkInsert, rows: QueryStream) -> Result<u64> {
        self.0.call(Verb::BulkInsert).await.0?;
        let mut batches = rows.batches;
        let mut rows = 0;
        while let Some(b) = batches.next().await {
            rows += b?.num_rows() as u64;
        }
        Ok(rows)
    }
}

#[async_trait]
impl Backend for Fake {
    fn kind(&self) -> BackendKind {
        self.0.kind
    }

    async fn execute_batch(&self, statements: Vec<Statement>, _: bool) -> Result<BatchOutcome> {
        statements.iter().for_each(|s| self.note(&s.sql));
        let n = self.0.call(Verb::Batch).await.0?;
        let outcome = |index| StatementResult {
            index,
            outcome: Ok(n),
        };
        Ok((0..statements.len()).map(outcome).collect())
    }

    async fn begin(&self, _: TxOptions) -> Result<Box<dyn Transaction>> {
        let (result, guard) = self.0.call(Verb::Begin).await;
        result?;
        Ok(Box::new(FakeTx {
            fake: self.clone(),
            open: Mutex::new(Some(guard)),
        }))
    }

    async fn health_check(&self) -> Result<()> {
        self.0.call(Verb::Health).await.0.map(|_| ())
    }

    fn state(&self) -> PoolState {
        *self.0.state.lock()
    }
}

/// A transaction of the fake: holds its "connection" (in flight) until it ends.
struct FakeTx {
    fake: Fake,
    open: Mutex<Option<InFlight>>,
}

impl FakeTx {
    async fn end(&self, verb: Verb) -> Result<()> {
        let result = self.fake.0.call(verb).await.0;
        self.open.lock().take();
        result.map(|_| ())
    }
}

/// Inside a transaction the fake answers as on its pool (bulk insert included).
#[async_trait]
impl Executor for FakeTx {
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        self.fake.query(sql, params, batch_size).await
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        self.fake.schema(sql, params).await
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        self.fake.execute(sql, params).await
    }
}

#[async_trait]
impl Transaction for FakeTx {
    async fn commit(&self) -> Result<()> {
        self.end(Verb::Commit).await
    }

    async fn rollback(&self) -> Result<()> {
        self.end(Verb::Rollback).await
    }
}

/// Hands out fakes by pool id: the one a test prepared with `insert`, else a new
/// `Fake` of the pool's kind, kept so the test can script and inspect it.
#[derive(Clone, Default)]
pub struct FakeFactory {
    fakes: Arc<Mutex<BTreeMap<String, Fake>>>,
}

impl FakeFactory {
    /// A factory with no fakes yet.
    pub fn new() -> FakeFactory {
        FakeFactory::default()
    }

    /// Makes pool `pool_id` get `fake` when it is created.
    pub fn insert(&self, pool_id: &str, fake: Fake) -> &FakeFactory {
        self.fakes.lock().insert(pool_id.to_string(), fake);
        self
    }

    /// The fake of pool `pool_id`; panics when no pool of that id was created or prepared.
    pub fn get(&self, pool_id: &str) -> Fake {
        self.fakes
            .lock()
            .get(pool_id)
            .cloned()
            .unwrap_or_else(|| panic!("no fake for pool `{pool_id}`"))
    }
}

#[async_trait]
impl BackendFactory for FakeFactory {
    async fn create(&self, pool_id: &str, pool: &ResolvedPool) -> Result<Arc<dyn Backend>> {
        let mut fakes = self.fakes.lock();
        let fake = fakes
            .entry(pool_id.to_string())
            .or_insert_with(|| Fake::new(pool.kind));
        Ok(fake.backend())
    }
}
