//! Serving Tollgate artifacts over the Open Inference Protocol (KServe v2, HTTP and gRPC), so
//! clients written for KServe, Seldon MLServer or Triton work unchanged.
//!
//! The model server hosts these routes over the versions it loads from the registry; the
//! gate and the promoter host them on loopback to time real `infer` round trips. One
//! crate, so the protocol, its errors and the client that checks it live once.
//!
//! - [`protocol`]: the request, response and metadata shapes;
//! - [`ServedModel`]: one loaded version, turning named input tensors into records;
//! - [`Catalog`]: what a server serves, swapped atomically per entry;
//! - [`http`]: the axum routes and [`http::serve`];
//! - [`grpc`]: the protocol's gRPC service (`GRPCInferenceService`) and [`grpc::serve`];
//! - [`client`]: an HTTP client of the protocol (integration tests, latency, benchmarks).

pub mod binary;
pub mod client;
pub mod grpc;
pub mod http;
pub mod protocol;

mod catalog;
mod model;

pub use catalog::{Catalog, Entry, Selector};
pub use model::{InferError, Scored, ServedModel};
