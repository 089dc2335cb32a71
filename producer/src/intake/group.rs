//! Group commit. Submissions that arrive while earlier groups are being written queue up; the next free
//! writer takes every one waiting (up to a limit) and writes them in one transaction, so one commit, and
//! one flush of PostgreSQL's write-ahead log, serves many requests. Under light load a group is a single
//! request and nothing waits for company. Every request is answered only after the commit that holds it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus::Histogram;
use shared_models::store::{PgPool, PgPooled};
use shared_models::web::ApiError;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::write::{write, PlaceOwners};
use super::{Submission, Verdict};
use crate::config::IntakeConfig;

/// Requests that may wait for a writer before new ones wait to be queued.
const QUEUE_LENGTH: usize = 4096;

/// How long a writer's connection may rest between two groups and be used again without the pool's check of
/// it (a round trip, as long as a small group's statements).
const KEEP_CONNECTION_FOR: Duration = Duration::from_secs(1);

/// The queue of submissions waiting to be written, shared by every HTTP worker.
pub struct GroupCommit {
    queue: mpsc::Sender<Waiting>,
}

/// One request's submissions and where its verdicts go.
struct Waiting {
    submissions: Vec<Submission>,
    answer: oneshot::Sender<Result<Vec<Verdict>, Arc<ApiError>>>,
}

/// Why intake is not taking receipts: the process is stopping.
#[derive(Debug, thiserror::Error)]
#[error("receipt intake has stopped")]
struct Stopped;

impl GroupCommit {
    /// Starts the writers on the current runtime.
    pub fn start(pool: PgPool, config: &IntakeConfig, group_sizes: Histogram) -> GroupCommit {
        let (queue, waiting) = mpsc::channel(QUEUE_LENGTH);
        tokio::spawn(gather(
            waiting,
            Arc::new(WriterConnections::new(pool)),
            config.group_max_receipts.max(1),
            config.group_writers.max(1),
            group_sizes,
        ));
        GroupCommit { queue }
    }

    /// Writes the submissions with whatever else is waiting and returns their verdicts, in order, once
    /// committed. One request's submissions are never split between transactions.
    pub async fn submit(&self, submissions: Vec<Submission>) -> Result<Vec<Verdict>, ApiError> {
        let stopped = || ApiError::Unavailable("receipt intake", Box::new(Stopped));
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting { submissions, answer })
            .await
            .map_err(|_| stopped())?;
        match answered.await {
            Ok(Ok(verdicts)) => Ok(verdicts),
            Ok(Err(failure)) => Err(ApiError::shared(
                "the transaction of this receipt's group failed",
                &failure,
            )),
            Err(_) => Err(stopped()),
        }
    }
}

/// A writer's connection and the places' owners read on it.
struct Writer {
    conn: PgPooled,
    owners: PlaceOwners,
}

/// The connections of writers between groups. Under load groups follow each other within milliseconds, and
/// a connection that wrote the last one is taken again as it is, with what it remembers; one that rested
/// longer goes back to the pool, which checks a connection it hands out (so one that PostgreSQL dropped
/// meanwhile is replaced), and what it remembered is forgotten.
struct WriterConnections {
    pool: PgPool,
    kept: Mutex<Vec<(Writer, Instant)>>,
}

impl WriterConnections {
    fn new(pool: PgPool) -> WriterConnections {
        WriterConnections {
            pool,
            kept: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Writer, ApiError> {
        let recent = {
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            kept.retain(|(_, rested_since)| rested_since.elapsed() < KEEP_CONNECTION_FOR);
            kept.pop()
        };
        match recent {
            Some((writer, _)) => Ok(writer),
            None => Ok(Writer {
                conn: self.pool.get()?,
                owners: PlaceOwners::default(),
            }),
        }
    }

    /// Keeps the writer of a group that was written; after a failure its connection goes back to the pool
    /// instead.
    fn keep(&self, writer: Writer) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.push((writer, Instant::now()));
    }
}

async fn gather(
    mut waiting: mpsc::Receiver<Waiting>,
    connections: Arc<WriterConnections>,
    max_receipts: usize,
    writers: usize,
    group_sizes: Histogram,
) {
    let writers = Arc::new(Semaphore::new(writers));
    while let Some(first) = waiting.recv().await {
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        let mut receipts = first.submissions.len();
        let mut group = vec![first];
        while receipts < max_receipts {
            let Ok(next) = waiting.try_recv() else { break };
            receipts += next.submissions.len();
            group.push(next);
        }
        group_sizes.observe(receipts as f64);
        let connections = connections.clone();
        tokio::spawn(async move {
            commit(connections, group).await;
            drop(writer);
        });
    }
}

/// Writes one group and answers each of its requests.
async fn commit(connections: Arc<WriterConnections>, group: Vec<Waiting>) {
    let mut answers = Vec::with_capacity(group.len());
    let mut submissions = Vec::new();
    for waiting in group {
        answers.push((waiting.submissions.len(), waiting.answer));
        submissions.extend(waiting.submissions);
    }
    let written = tokio::task::spawn_blocking(move || -> Result<Vec<Verdict>, ApiError> {
        let mut writer = connections.take()?;
        let verdicts = write(&mut writer.conn, &mut writer.owners, &submissions, Utc::now())?;
        connections.keep(writer);
        Ok(verdicts)
    })
    .await;
    let written = match written {
        Ok(written) => written,
        Err(join_error) => Err(ApiError::Internal(Box::new(join_error))),
    };
    match written {
        Ok(verdicts) => {
            let mut verdicts = verdicts.into_iter();
            for (count, answer) in answers {
                let _ = answer.send(Ok(verdicts.by_ref().take(count).collect()));
            }
        }
        Err(error) => {
            let failure = Arc::new(error);
            for (_, answer) in answers {
                let _ = answer.send(Err(failure.clone()));
            }
        }
    }
}
