//! Compiles `tollgate/v1/*.proto` and the Open Inference Protocol's
//! `inference/grpc_predict_v2.proto` with a vendored protoc, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    println!("cargo:rerun-if-changed=tollgate/v1/tollgate.proto");
    println!("cargo:rerun-if-changed=inference/grpc_predict_v2.proto");
    tonic_prost_build::configure().compile_with_config(
        config,
        &[
            "tollgate/v1/tollgate.proto",
            "inference/grpc_predict_v2.proto",
        ],
        &["."],
    )?;
    Ok(())
}
