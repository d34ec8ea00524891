//! Generates the `cohortdb.v1` tonic/prost code and the descriptor set server reflection serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/cohortdb/v1/query.proto",
        "proto/cohortdb/v1/admin.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("cohortdb_v1_descriptor.bin"))
        .compile_with_config(config, &protos, &["proto"])?;
    Ok(())
}
