//! The bus's one error type, below every module that reports one (the connection, the
//! codec, the stores).

/// The cause of a bus failure, as the NATS client reported it.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the bus plumbing; each keeps the client's error as its source.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL that was tried.
        url: String,
        /// What the client said.
        source: Cause,
    },
    /// A stream, consumer, bucket or object store could not be created or opened.
    #[error("cannot set up {what} on NATS JetStream: {source}")]
    Setup {
        /// The thing being set up.
        what: String,
        /// What the server said.
        source: Cause,
    },
    /// Publishing failed or was not acknowledged.
    #[error("cannot publish on {subject}: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// What the client said.
        source: Cause,
    },
    /// A KV or object store operation failed.
    #[error("{op} failed: {source}")]
    Store {
        /// The operation.
        op: String,
        /// What the server said.
        source: Cause,
    },
    /// A message's type header names another type than the subject carries.
    #[error("a {found} message where a {expected} belongs")]
    WrongType {
        /// The type the subject carries.
        expected: &'static str,
        /// The type the message says it is.
        found: String,
    },
    /// A payload could not be decoded.
    #[error("malformed {what}: {source}")]
    Decode {
        /// The message type expected.
        what: &'static str,
        /// What the decoder said.
        source: prost::DecodeError,
    },
}

impl BusError {
    /// A failed KV or object store operation.
    pub fn store(op: impl Into<String>, source: impl Into<Cause>) -> Self {
        BusError::Store {
            op: op.into(),
            source: source.into(),
        }
    }
}
