//! Reading and replaying the dead letters [`crate::consume`] files on
//! `tollgate.deadletter.<consumer>`: what `tollgate dlq list` and `tollgate dlq replay`
//! show and do. A dead letter is identified by its sequence in the dead-letter stream.

use async_nats::{HeaderMap, jetstream::stream::Stream};
use bytes::Bytes;

use crate::{Bus, BusError, subjects};

/// One dead-lettered message.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its id: the sequence in the dead-letter stream.
    pub id: u64,
    /// When it was dead-lettered, in ms since the epoch.
    pub at_unix_ms: i64,
    /// The consumer that gave up on it.
    pub consumer: String,
    /// The subject it was first published on.
    pub subject: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// How many times it was delivered.
    pub deliveries: u32,
    /// The original payload.
    pub payload: Bytes,
    /// The original headers, with the dead-letter ones.
    pub headers: HeaderMap,
}

/// Why a dead letter cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// There is no dead letter with that id (never was, or already replayed).
    #[error("no dead letter {0} (see `tollgate dlq list`)")]
    NotFound(u64),
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl Bus {
    /// The dead letters.
    pub fn dead_letters(&self) -> DeadLetters<'_> {
        DeadLetters(self)
    }
}

/// The dead-letter stream.
pub struct DeadLetters<'a>(&'a Bus);

impl DeadLetters<'_> {
    async fn stream(&self) -> Result<Stream, BusError> {
        self.0
            .jetstream()
            .get_stream(subjects::DEADLETTER_STREAM)
            .await
            .map_err(|e| BusError::store("opening the dead-letter stream", e))
    }

    /// Every dead letter, oldest first.
    pub async fn list(&self) -> Result<Vec<DeadLetter>, BusError> {
        let stream = self.stream().await?;
        let state = stream
            .get_info()
            .await
            .map_err(|e| BusError::store("reading the dead-letter stream", e))?
            .state;
        let mut letters = Vec::new();
        if state.messages == 0 {
            return Ok(letters);
        }
        for seq in state.first_sequence..=state.last_sequence {
            // A replayed (deleted) sequence is a gap.
            if let Ok(msg) = stream.get_raw_message(seq).await {
                letters.push(read(msg));
            }
        }
        Ok(letters)
    }

    /// One dead letter.
    pub async fn get(&self, id: u64) -> Result<DeadLetter, DeadLetterError> {
        let stream = self.stream().await?;
        let msg = stream
            .get_raw_message(id)
            .await
            .map_err(|_| DeadLetterError::NotFound(id))?;
        Ok(read(msg))
    }

    /// Publishes a dead letter again on its original subject (as a new message, with its
    /// trace headers) and removes it from the dead letters; returns the subject.
    pub async fn replay(&self, id: u64) -> Result<String, DeadLetterError> {
        let letter = self.get(id).await?;
        let mut headers = HeaderMap::new();
        for (name, values) in letter.headers.iter() {
            let name: &str = name.as_ref();
            let ours = [
                subjects::HEADER_REASON,
                subjects::HEADER_ORIGINAL_SUBJECT,
                subjects::HEADER_DELIVERIES,
                "Nats-Msg-Id",
            ];
            if ours.iter().any(|o| o.eq_ignore_ascii_case(name)) {
                continue;
            }
            for value in values {
                headers.append(name, value.as_str());
            }
        }
        self.0
            .publish_raw(letter.subject.clone(), headers, letter.payload.clone())
            .await?;
        self.stream()
            .await?
            .delete_message(id)
            .await
            .map_err(|e| BusError::store(format!("removing dead letter {id}"), e))?;
        Ok(letter.subject)
    }
}

fn read(msg: async_nats::jetstream::message::StreamMessage) -> DeadLetter {
    let header = |name: &str| {
        msg.headers
            .get(name)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default()
    };
    DeadLetter {
        id: msg.sequence,
        at_unix_ms: (msg.time.unix_timestamp_nanos() / 1_000_000) as i64,
        consumer: subjects::deadletter_consumer(msg.subject.as_str())
            .unwrap_or_default()
            .to_string(),
        subject: header(subjects::HEADER_ORIGINAL_SUBJECT),
        reason: header(subjects::HEADER_REASON),
        deliveries: header(subjects::HEADER_DELIVERIES).parse().unwrap_or(0),
        payload: msg.payload.clone(),
        headers: msg.headers.clone(),
    }
}
