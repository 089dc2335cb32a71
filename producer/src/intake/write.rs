//! Writing a group of submissions in one transaction, with one statement per table whatever the group's
//! size. Each receipt is still decided on its own: the first to name a place claims it, the first to use a
//! transaction id is accepted, and the ones after it are duplicates or conflicts.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;
use shared_models::domain::FieldError;
use shared_models::store::accepted::{self, NewAccepted, ReceiptKey};
use shared_models::store::places;
use shared_models::store::receipt_log::{self, Attempt, AttemptOutcome};

use super::{Outcome, PlacedReceipt, ReceiptToStore, Submission, Verdict};

/// How many times a group is written again after PostgreSQL chose it as a deadlock's victim.
const DEADLOCK_RETRIES: u32 = 3;

/// How many places' owners a writer remembers; past that it forgets them all and reads them again.
const REMEMBERED_PLACES: usize = 50_000;

/// The owners of the places a writer's connection has read or registered in groups it committed. A place's
/// merchant never changes once a receipt claimed it (no statement updates or deletes a place), so a place
/// remembered here is not read again, and a group's places are read from PostgreSQL only when one is new.
/// The memory lasts as long as the connection is used without a break: it goes with the connection when a
/// group fails or the connection rests (group.rs), so a database restored without some places, which breaks
/// every connection, is read afresh. The accepted receipt's foreign key still checks that the place exists.
#[derive(Default)]
pub struct PlaceOwners(HashMap<String, String>);

impl PlaceOwners {
    fn known(&self, places: &BTreeMap<String, String>) -> HashMap<String, String> {
        places
            .keys()
            .filter_map(|place_id| Some((place_id.clone(), self.0.get(place_id)?.clone())))
            .collect()
    }

    fn remember(&mut self, learned: HashMap<String, String>) {
        if self.0.len() + learned.len() > REMEMBERED_PLACES {
            self.0.clear();
        }
        self.0.extend(learned);
    }
}

/// Writes the submissions in one transaction and returns a verdict for each, in order. Nothing is kept
/// unless everything is: a failure fails the whole group, and no receipt was answered yet.
pub fn write(
    conn: &mut PgConnection,
    owners: &mut PlaceOwners,
    submissions: &[Submission],
    now: DateTime<Utc>,
) -> QueryResult<Vec<Verdict>> {
    // PostgreSQL keeps microseconds: answer with the instant as stored, so a later duplicate answers the same.
    let now = now.trunc_subsecs(6);
    let mut retries = 0;
    loop {
        match conn.transaction(|conn| write_group(conn, owners, submissions, now)) {
            Ok((verdicts, learned)) => {
                owners.remember(learned);
                return Ok(verdicts);
            }
            Err(error) if retries < DEADLOCK_RETRIES && is_deadlock(&error) => {
                retries += 1;
                log::warn!(
                    "a group of {} receipts is written again after a deadlock",
                    submissions.len()
                );
            }
            Err(error) => return Err(error),
        }
    }
}

fn is_deadlock(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// A submission on its way through the group. A receipt that named its place is borrowed as it came.
enum Step<'s> {
    Decided {
        attempt: Attempt,
        verdict: Verdict,
    },
    Store {
        merchant_id: &'s str,
        placed: Cow<'s, PlacedReceipt>,
    },
}

impl Step<'_> {
    fn refused(
        merchant_id: &str,
        transaction_id: &str,
        reasons: serde_json::Value,
        verdict: Verdict,
    ) -> Self {
        Step::Decided {
            attempt: Attempt::rejected(Some(merchant_id), Some(transaction_id), reasons, None),
            verdict,
        }
    }

    fn key(&self) -> Option<ReceiptKey> {
        match self {
            Step::Store { merchant_id, placed } => {
                Some((merchant_id.to_string(), placed.receipt.transaction_id.clone()))
            }
            Step::Decided { .. } => None,
        }
    }
}

/// Writes one group; returns its verdicts and the owners of the places it read from PostgreSQL.
fn write_group(
    conn: &mut PgConnection,
    owners: &PlaceOwners,
    submissions: &[Submission],
    now: DateTime<Utc>,
) -> QueryResult<(Vec<Verdict>, HashMap<String, String>)> {
    let mut steps = resolve_places(conn, submissions)?;
    let learned = refuse_foreign_places(conn, owners, &mut steps)?;

    // The first receipt of each key is offered; it is new unless the merchant sent that key before.
    let keys: Vec<Option<ReceiptKey>> = steps.iter().map(Step::key).collect();
    let mut offered = HashSet::new();
    let first: Vec<bool> = keys
        .iter()
        .map(|key| key.as_ref().is_some_and(|key| offered.insert(key)))
        .collect();
    let new: Vec<NewAccepted> = steps
        .iter()
        .zip(&first)
        .filter_map(|(step, first)| match step {
            Step::Store { merchant_id, placed } if *first => Some(NewAccepted {
                merchant_id,
                receipt: &placed.receipt,
                document: &placed.document,
                content_hash: &placed.content_hash,
            }),
            _ => None,
        })
        .collect();
    let recorded = accepted::accept_all(conn, &new, now)?;
    let fresh: Vec<bool> = keys
        .iter()
        .zip(&first)
        .map(|(key, first)| *first && key.as_ref().is_some_and(|key| recorded.contains(key)))
        .collect();
    let compared: BTreeSet<ReceiptKey> = keys
        .iter()
        .zip(&fresh)
        .filter(|(_, fresh)| !**fresh)
        .filter_map(|(key, _)| key.clone())
        .collect();
    let earlier = accepted::fingerprints(conn, &compared)?;

    let mut attempts = Vec::with_capacity(steps.len());
    let mut verdicts = Vec::with_capacity(steps.len());
    for ((step, key), new) in steps.into_iter().zip(keys).zip(fresh) {
        let (attempt, verdict) = match step {
            Step::Decided { attempt, verdict } => (attempt, verdict),
            Step::Store { merchant_id, placed } => {
                let (outcome, logged, reasons) = if new {
                    (
                        Outcome::Accepted { received_at: now },
                        AttemptOutcome::Accepted,
                        None,
                    )
                } else {
                    match key.as_ref().and_then(|key| earlier.get(key)) {
                        Some((hash, received_at)) if *hash == placed.content_hash => (
                            Outcome::Duplicate {
                                received_at: *received_at,
                            },
                            AttemptOutcome::Duplicate,
                            None,
                        ),
                        Some(_) => (
                            Outcome::Conflict,
                            AttemptOutcome::Conflict,
                            Some(json!([{
                                "code": "transaction_conflict",
                                "message": "same transaction_id, different content",
                            }])),
                        ),
                        None => return Err(DieselError::NotFound),
                    }
                };
                let attempt = Attempt {
                    merchant_id: Some(merchant_id.to_owned()),
                    transaction_id: Some(placed.receipt.transaction_id.clone()),
                    outcome: logged,
                    reasons,
                    rejected_body: None,
                };
                (attempt, Verdict::Stored(outcome))
            }
        };
        attempts.push(attempt);
        verdicts.push(verdict);
    }
    receipt_log::log_attempts(conn, &attempts)?;
    Ok((verdicts, learned))
}

/// Gives each storable receipt its place: the one it names, or its merchant's only place.
fn resolve_places<'s>(conn: &mut PgConnection, submissions: &'s [Submission]) -> QueryResult<Vec<Step<'s>>> {
    let placeless: BTreeSet<String> = submissions
        .iter()
        .filter_map(|submission| match submission {
            Submission::Storable {
                merchant_id,
                receipt: ReceiptToStore::Placeless(_),
            } => Some(merchant_id.clone()),
            _ => None,
        })
        .collect();
    let sole = if placeless.is_empty() {
        HashMap::new()
    } else {
        places::sole_places(conn, &placeless)?
    };
    Ok(submissions
        .iter()
        .map(|submission| match submission {
            Submission::Refused { attempt, verdict } => Step::Decided {
                attempt: attempt.clone(),
                verdict: verdict.clone(),
            },
            Submission::Storable {
                merchant_id,
                receipt: ReceiptToStore::Placed(placed),
            } => Step::Store {
                merchant_id,
                placed: Cow::Borrowed(placed),
            },
            Submission::Storable {
                merchant_id,
                receipt: ReceiptToStore::Placeless(receipt),
            } => match sole.get(merchant_id) {
                Some(place_id) => Step::Store {
                    merchant_id,
                    placed: Cow::Owned(PlacedReceipt::new(receipt.clone().into_receipt(place_id.clone()))),
                },
                None => {
                    let details = vec![FieldError::new(
                        "place_id",
                        "required",
                        "place_id is required unless the merchant has exactly one place",
                    )];
                    Step::refused(
                        merchant_id,
                        receipt.transaction_id(),
                        json!(details),
                        Verdict::Invalid(details),
                    )
                }
            },
        })
        .collect())
}

/// Registers the places named for the first time (the first merchant to name one in the group claims it)
/// and refuses receipts for places another merchant owns. Returns the owners it read from PostgreSQL (the
/// places not remembered).
fn refuse_foreign_places(
    conn: &mut PgConnection,
    remembered: &PlaceOwners,
    steps: &mut [Step<'_>],
) -> QueryResult<HashMap<String, String>> {
    let mut claims = BTreeMap::new();
    for step in steps.iter() {
        if let Step::Store { merchant_id, placed } = step {
            if !claims.contains_key(&placed.receipt.place_id) {
                claims.insert(placed.receipt.place_id.clone(), merchant_id.to_string());
            }
        }
    }
    let mut owners = remembered.known(&claims);
    claims.retain(|place_id, _| !owners.contains_key(place_id));
    let learned = if claims.is_empty() {
        HashMap::new()
    } else {
        places::claim_all(conn, &claims)?
    };
    owners.extend(
        learned
            .iter()
            .map(|(place, owner)| (place.clone(), owner.clone())),
    );
    for step in steps.iter_mut() {
        if let Step::Store { merchant_id, placed } = step {
            let receipt = &placed.receipt;
            if owners.get(&receipt.place_id).map(String::as_str) != Some(*merchant_id) {
                let reasons = json!([{ "code": "place_forbidden", "message": "the place belongs to another merchant" }]);
                *step = Step::refused(
                    merchant_id,
                    &receipt.transaction_id,
                    reasons,
                    Verdict::Stored(Outcome::ForeignPlace),
                );
            }
        }
    }
    Ok(learned)
}
