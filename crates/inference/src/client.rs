//! A client of the protocol: what the promoter's integration test, the gate's served
//! latency and `make bench-serve` call a server with.

use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_ml::table::{Columns, Record};

use crate::protocol::{BYTES, ErrorBody, InferRequest, InferResponse, InputTensor, PROBABILITY};

/// Why a call to a server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: refused, timed out, cut off.
    #[error("{url}: {source}")]
    Unreachable {
        /// What was called.
        url: String,
        /// What the HTTP client said.
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// What was called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The protocol's error message.
        message: String,
    },
    /// The answer is not the protocol's.
    #[error("{url}: {message}")]
    Protocol {
        /// What was called.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The model did not become ready in time.
    #[error("{url}: not ready after {waited:?}")]
    NotReady {
        /// The readiness URL polled.
        url: String,
        /// How long it waited.
        waited: Duration,
    },
}

/// A protocol client of the server at `base` (`http://127.0.0.1:8000`).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// The input tensors of `records` for a model reading `columns`: one per feature.
pub fn request_for(columns: &Columns, records: &[Record]) -> InferRequest {
    let rows = records.len() as i64;
    let numeric = columns
        .numeric
        .iter()
        .enumerate()
        .map(|(j, name)| InputTensor {
            name: name.clone(),
            shape: vec![rows],
            datatype: "FP64".into(),
            data: Value::Array(
                records
                    .iter()
                    .map(|r| {
                        r.numeric[j]
                            .and_then(serde_json::Number::from_f64)
                            .map_or(Value::Null, Value::Number)
                    })
                    .collect(),
            ),
            parameters: None,
        });
    let categorical = columns
        .categorical
        .iter()
        .enumerate()
        .map(|(j, name)| InputTensor {
            name: name.clone(),
            shape: vec![rows],
            datatype: BYTES.into(),
            data: Value::Array(
                records
                    .iter()
                    .map(|r| r.categorical[j].clone().map_or(Value::Null, Value::String))
                    .collect(),
            ),
            parameters: None,
        });
    InferRequest {
        inputs: numeric.chain(categorical).collect(),
        ..Default::default()
    }
}

impl Client {
    /// A client of the server at `base`; calls time out after 30 s.
    pub fn new(base: &str) -> Self {
        Self::with_bearer(base, "")
    }

    /// A client of the server at `base` that sends `token` as its bearer token (a server
    /// with `TOLLGATE_SERVER_TOKENS_FILE` wants one); an empty `token` sends none.
    pub fn with_bearer(base: &str, token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            && !token.is_empty()
        {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .default_headers(headers)
            .build()
            .unwrap_or_default();
        Client {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn model_url(&self, model: &str, version: Option<u32>) -> String {
        match version {
            Some(v) => format!("{}/v2/models/{model}/versions/{v}", self.base),
            None => format!("{}/v2/models/{model}", self.base),
        }
    }

    /// `POST .../infer`.
    pub async fn infer(
        &self,
        model: &str,
        version: Option<u32>,
        request: &InferRequest,
    ) -> Result<InferResponse, ClientError> {
        let url = format!("{}/infer", self.model_url(model, version));
        let sent = self.http.post(&url).json(request).send().await;
        let response = sent.map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if status != 200 {
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Status {
                url,
                status,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
            url,
            message: format!("not an inference response: {e}"),
        })
    }

    /// The probabilities the server gives `records`, in order.
    pub async fn probabilities(
        &self,
        model: &str,
        version: Option<u32>,
        columns: &Columns,
        records: &[Record],
    ) -> Result<Vec<f64>, ClientError> {
        let response = self
            .infer(model, version, &request_for(columns, records))
            .await?;
        let url = self.model_url(model, version);
        if let Some(v) = version
            && response.model_version.as_deref() != Some(v.to_string().as_str())
        {
            return Err(ClientError::Protocol {
                url,
                message: format!("asked for v{v}, answered by {:?}", response.model_version),
            });
        }
        match response.numbers(PROBABILITY) {
            Some(p) if p.len() == records.len() => Ok(p),
            _ => Err(ClientError::Protocol {
                url,
                message: format!("no {PROBABILITY} output of {} numbers", records.len()),
            }),
        }
    }

    /// Whether `GET /v2/health/ready` answers 200: every served entry has a version.
    pub async fn server_ready(&self) -> Result<bool, ClientError> {
        self.answers_ok(format!("{}/v2/health/ready", self.base))
            .await
    }

    /// Whether `GET /v2/health/live` answers 200.
    pub async fn server_live(&self) -> Result<bool, ClientError> {
        self.answers_ok(format!("{}/v2/health/live", self.base))
            .await
    }

    async fn answers_ok(&self, url: String) -> Result<bool, ClientError> {
        Ok(self.status_of(url).await?.is_success())
    }

    /// The status a `GET` of `url` answers with.
    async fn status_of(&self, url: String) -> Result<reqwest::StatusCode, ClientError> {
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable { url, source })?;
        Ok(response.status())
    }

    /// Whether the server has an entry for `model` at all (its metadata is not 404),
    /// loaded or not yet.
    pub async fn serves(&self, model: &str) -> Result<bool, ClientError> {
        let status = self.status_of(self.model_url(model, None)).await?;
        Ok(status != reqwest::StatusCode::NOT_FOUND)
    }

    /// Whether `.../ready` answers 200.
    pub async fn model_ready(
        &self,
        model: &str,
        version: Option<u32>,
    ) -> Result<bool, ClientError> {
        self.answers_ok(format!("{}/ready", self.model_url(model, version)))
            .await
    }

    /// Polls `.../ready` until it answers 200 or `timeout` passes. A server not
    /// listening yet counts as not ready.
    pub async fn wait_ready(
        &self,
        model: &str,
        version: Option<u32>,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let started = Instant::now();
        loop {
            if let Ok(true) = self.model_ready(model, version).await {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(ClientError::NotReady {
                    url: format!("{}/ready", self.model_url(model, version)),
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Milliseconds of `calls` single-record `infer` round trips over `records` (cycled),
    /// after a warm-up of ten.
    pub async fn round_trips(
        &self,
        model: &str,
        version: Option<u32>,
        columns: &Columns,
        records: &[Record],
        calls: usize,
    ) -> Result<Vec<f64>, ClientError> {
        let mut times = Vec::with_capacity(calls);
        if records.is_empty() {
            return Ok(times);
        }
        let requests: Vec<InferRequest> = records
            .iter()
            .map(|r| request_for(columns, std::slice::from_ref(r)))
            .collect();
        for r in requests.iter().take(10) {
            self.infer(model, version, r).await?;
        }
        for k in 0..calls {
            let t = Instant::now();
            self.infer(model, version, &requests[k % requests.len()])
                .await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(times)
    }
}
