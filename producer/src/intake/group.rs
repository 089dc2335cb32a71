//! Group commit. Submissions that arrive while earlier groups are being written queue up; the next free
//! writer takes every one waiting (up to a limit) and writes them in one transaction, so one commit, and
//! one flush of PostgreSQL's write-ahead log, serves many requests. Under light load a group is a single
//! request and nothing waits for company. Every request is answered only after the commit that holds it.
//!
//! Intake holds at most `INTAKE_QUEUE_RECEIPTS` receipts at once, queued or being written. A request that
//! would take it past that is answered `503 unavailable` at once, before anything is written, rather than
//! waiting behind a queue that only grows: the client retries later, and the receipts waiting for a writer, and
//! how long they wait, stay bounded however many clients send at once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus::{Histogram, IntCounter};
use shared_models::store::{PgPool, PgPooled};
use shared_models::web::ApiError;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::write::{write, PlaceOwners};
use super::{Submission, Verdict};
use crate::config::IntakeConfig;

/// How long a writer's connection may rest between two groups and be used again without the pool's check of
/// it (a round trip, as long as a small group's statements).
const KEEP_CONNECTION_FOR: Duration = Duration::from_secs(1);

/// The queue of submissions waiting to be written, shared by every HTTP worker.
pub struct GroupCommit {
    queue: mpsc::Sender<Waiting>,
    /// Room for receipts: a request holds one permit per receipt from submission until its answer.
    room: Arc<Semaphore>,
    capacity: u32,
    turned_away: IntCounter,
}

/// The metrics group commit keeps.
pub struct GroupMetrics {
    pub group_sizes: Histogram,
    pub turned_away: IntCounter,
}

/// One request's submissions, where its verdicts go, and its room, held until it is answered (even when its
/// client left meanwhile).
struct Waiting {
    submissions: Vec<Submission>,
    answer: oneshot::Sender<Result<Vec<Verdict>, Arc<ApiError>>>,
    room: OwnedSemaphorePermit,
}

/// Why intake is not taking receipts: the process is stopping.
#[derive(Debug, thiserror::Error)]
#[error("receipt intake has stopped")]
struct Stopped;

/// Why intake turned a request away: it already holds as many receipts as it may.
#[derive(Debug, thiserror::Error)]
#[error("its receipts do not fit beside those queued or being written (at most {0}, INTAKE_QUEUE_RECEIPTS)")]
struct Full(u32);

impl GroupCommit {
    /// Starts the writers on the current runtime.
    pub fn start(pool: PgPool, config: &IntakeConfig, metrics: GroupMetrics) -> GroupCommit {
        let capacity = u32::try_from(config.queue_receipts).unwrap_or(u32::MAX).max(1);
        // Every waiting request holds at least one permit, so the queue never fills before the room does.
        let (queue, waiting) = mpsc::channel(capacity as usize);
        tokio::spawn(gather(
            waiting,
            Arc::new(WriterConnections::new(pool)),
            config.group_max_receipts.max(1),
            config.group_writers.max(1),
            metrics.group_sizes,
        ));
        GroupCommit {
            queue,
            room: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            turned_away: metrics.turned_away,
        }
    }

    /// Writes the submissions with whatever else is waiting and returns their verdicts, in order, once
    /// committed. One request's submissions are never split between transactions. When intake already
    /// holds as many receipts as it may, answers `Unavailable` at once and writes nothing.
    pub async fn submit(&self, submissions: Vec<Submission>) -> Result<Vec<Verdict>, ApiError> {
        let stopped = || ApiError::Unavailable("receipt intake", Box::new(Stopped));
        // A request larger than the whole room takes all of it: it is taken when nothing else is, not never.
        let wanted = u32::try_from(submissions.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity);
        let Ok(room) = self.room.clone().try_acquire_many_owned(wanted) else {
            self.turned_away.inc_by(submissions.len() as u64);
            return Err(ApiError::Unavailable(
                "receipt intake",
                Box::new(Full(self.capacity)),
            ));
        };
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting {
                submissions,
                answer,
                room,
            })
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
    let mut rooms = Vec::with_capacity(group.len());
    let mut submissions = Vec::new();
    for waiting in group {
        answers.push((waiting.submissions.len(), waiting.answer));
        rooms.push(waiting.room);
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
    // Every request of the group is answered: its receipts leave intake's room.
    drop(rooms);
}
