//! Compiles the protos with protox (no protoc needed) and generates the tonic services:
//! proto/csi.proto (the CSI services) and proto/pluginregistration.proto (the kubelet's
//! plugin registration).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTOS: [&str; 2] = ["proto/csi.proto", "proto/pluginregistration.proto"];
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
