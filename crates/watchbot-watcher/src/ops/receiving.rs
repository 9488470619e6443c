//! The dead-letter operations on any queue through the [`Queue`] port alone (receive, send, delete, change
//! visibility), as SQS needs them: its `StartMessageMoveTask` moves a whole queue, not chosen messages, and moto
//! does not have it.
//!
//! To look, every dead letter is received with a short visibility ([`PEEK_VISIBILITY`]), and all of them are made
//! visible again (visibility 0) before the call returns, whatever it did: nothing is consumed by looking, and after a
//! crash they come back by themselves within that window. Receives repeat until one comes back empty (a long poll,
//! so SQS asks every server), at most [`MAX_PEEK`] messages per pass. To act, the ids are all checked first; a
//! redrive sends each message to the work queue and only then deletes its dead letter (a crash in between leaves a
//! duplicate, never a loss).

use super::{DeadLetter, OpsError, Redriven};
use crate::ports::{OutgoingMessage, Queue, ReceiveRequest, ReceivedMessage, VisibilityChange};
use std::collections::HashMap;
use std::time::Duration;

/// How long a looked-at dead letter stays hidden if it is not made visible again (a crash while looking).
pub const PEEK_VISIBILITY: Duration = Duration::from_secs(30);
/// The most dead letters one pass receives (SQS allows 120,000 in flight); `--all` and purge repeat passes.
pub const MAX_PEEK: usize = 10_000;
/// The long-poll wait of the receive that finds the queue empty.
const PEEK_WAIT: Duration = Duration::from_secs(1);

/// Dead letters received for a look, with the receipt handles that hold them.
struct Peeked {
    letters: Vec<(DeadLetter, String)>,
    /// Whether the pass stopped at [`MAX_PEEK`] (more may be waiting).
    full: bool,
}

fn dead_letter(message: &ReceivedMessage) -> DeadLetter {
    DeadLetter {
        message_id: message.message_id.clone(),
        body: message.body.clone(),
        attributes: message.attributes.clone(),
        sent_ms: message.sent_timestamp_ms,
        receive_count: message.receive_count,
        first_receive_ms: Some(message.first_receive_timestamp_ms),
    }
}

async fn peek<D: Queue>(dead_letter_queue: &D) -> Result<Peeked, OpsError> {
    let mut letters: Vec<(DeadLetter, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let request = ReceiveRequest { max_messages: 10, wait: PEEK_WAIT, visibility_timeout: Some(PEEK_VISIBILITY) };
    while letters.len() < MAX_PEEK {
        let received = match dead_letter_queue.receive(request).await {
            Ok(received) => received,
            Err(error) => {
                // What was hidden so far is shown again before the error is reported.
                let _ = release(dead_letter_queue, &letters).await;
                return Err(error.into());
            }
        };
        if received.is_empty() {
            break;
        }
        for message in received {
            match index.get(&message.message_id) {
                // Received twice in one look (SQS may deliver a message twice): only the newest handle works.
                Some(&at) => letters[at].1 = message.receipt_handle,
                None => {
                    index.insert(message.message_id.clone(), letters.len());
                    letters.push((dead_letter(&message), message.receipt_handle));
                }
            }
        }
    }
    let full = letters.len() >= MAX_PEEK;
    Ok(Peeked { letters, full })
}

/// Makes these dead letters visible again at once.
async fn release<D: Queue>(dead_letter_queue: &D, letters: &[(DeadLetter, String)]) -> Result<(), OpsError> {
    if letters.is_empty() {
        return Ok(());
    }
    let changes: Vec<VisibilityChange> = letters
        .iter()
        .map(|(_, handle)| VisibilityChange { receipt_handle: handle.clone(), timeout: Duration::ZERO })
        .collect();
    let failures = dead_letter_queue.change_visibility_batch(&changes).await?;
    match failures.into_iter().next() {
        // A stale handle means someone else received it since: it is not ours to show again.
        Some(failure) if failure.error.kind != crate::ports::PortErrorKind::InvalidReceipt => {
            Err(OpsError::Port(failure.error))
        }
        _ => Ok(()),
    }
}

/// Splits the peeked letters into the ones asked for (in the order asked; an id asked twice counts once) and the
/// rest, or gives them back with the first unknown id.
fn pick(peeked: Vec<(DeadLetter, String)>, ids: &[String]) -> Result<Split, (Vec<(DeadLetter, String)>, String)> {
    let mut order = Vec::with_capacity(ids.len());
    for id in ids {
        match peeked.iter().position(|(letter, _)| &letter.message_id == id) {
            Some(at) if !order.contains(&at) => order.push(at),
            Some(_) => {}
            None => return Err((peeked, id.clone())),
        }
    }
    let mut slots: Vec<Option<(DeadLetter, String)>> = peeked.into_iter().map(Some).collect();
    let picked = order.iter().filter_map(|&at| slots[at].take()).collect();
    Ok((picked, slots.into_iter().flatten().collect()))
}

/// The letters asked for, and the rest.
type Split = (Vec<(DeadLetter, String)>, Vec<(DeadLetter, String)>);

/// Every dead letter (the first [`MAX_PEEK`]), consuming none.
pub async fn list<D: Queue>(dead_letter_queue: &D) -> Result<Vec<DeadLetter>, OpsError> {
    let peeked = peek(dead_letter_queue).await?;
    release(dead_letter_queue, &peeked.letters).await?;
    Ok(peeked.letters.into_iter().map(|(letter, _)| letter).collect())
}

/// These dead letters, consuming none; an unknown id is an error.
pub async fn show<D: Queue>(dead_letter_queue: &D, ids: &[String]) -> Result<Vec<DeadLetter>, OpsError> {
    let peeked = peek(dead_letter_queue).await?;
    release(dead_letter_queue, &peeked.letters).await?;
    let (picked, _) = pick(peeked.letters, ids).map_err(|(_, id)| OpsError::UnknownId(id))?;
    Ok(picked.into_iter().map(|(letter, _)| letter).collect())
}

/// What to do with each dead letter picked.
enum Act<'a, W> {
    /// Send it to this work queue, then delete it.
    Redrive(&'a W),
    /// Delete it.
    Delete,
}

impl<W: Queue> Act<'_, W> {
    async fn apply<D: Queue>(
        &self,
        dead_letter_queue: &D,
        letter: &DeadLetter,
        handle: &str,
    ) -> Result<Redriven, OpsError> {
        let mut new_message_id = String::new();
        if let Act::Redrive(work) = self {
            let copy = OutgoingMessage {
                body: letter.body.clone(),
                attributes: letter.attributes.clone(),
                delay: Duration::ZERO,
            };
            new_message_id = work.send(copy).await?;
        }
        dead_letter_queue.delete(handle).await?;
        Ok(Redriven { message_id: letter.message_id.clone(), new_message_id })
    }
}

/// Acts on the peeked letters with these ids (`None`: all, pass after pass while passes come back full), making the
/// rest visible again.
async fn for_each<W: Queue, D: Queue>(
    dead_letter_queue: &D,
    ids: Option<&[String]>,
    act: Act<'_, W>,
) -> Result<Vec<Redriven>, OpsError> {
    let mut done = Vec::new();
    loop {
        let peeked = peek(dead_letter_queue).await?;
        let full = peeked.full;
        let (picked, rest) = match ids {
            None => (peeked.letters, Vec::new()),
            Some(ids) => match pick(peeked.letters, ids) {
                Ok(split) => split,
                Err((letters, unknown)) => {
                    // Nothing was done: every letter is shown again, and the error names the id.
                    release(dead_letter_queue, &letters).await?;
                    return Err(OpsError::UnknownId(unknown));
                }
            },
        };
        release(dead_letter_queue, &rest).await?;
        let mut picked = picked.into_iter();
        while let Some((letter, handle)) = picked.next() {
            match act.apply(dead_letter_queue, &letter, &handle).await {
                Ok(value) => done.push(value),
                Err(error) => {
                    let left: Vec<_> = picked.collect();
                    let _ = release(dead_letter_queue, &left).await;
                    return Err(error);
                }
            }
        }
        if ids.is_some() || !full {
            return Ok(done);
        }
    }
}

/// Sends these dead letters (`None`: all) to the work queue, each before its dead letter is deleted.
pub async fn redrive<W: Queue, D: Queue>(
    work: &W,
    dead_letter_queue: &D,
    ids: Option<&[String]>,
) -> Result<Vec<Redriven>, OpsError> {
    for_each(dead_letter_queue, ids, Act::Redrive(work)).await
}

/// Deletes these dead letters (`None`: all); returns their ids.
pub async fn delete<D: Queue>(dead_letter_queue: &D, ids: Option<&[String]>) -> Result<Vec<String>, OpsError> {
    let deleted = for_each(dead_letter_queue, ids, Act::<D>::Delete).await?;
    Ok(deleted.into_iter().map(|redriven| redriven.message_id).collect())
}
