//! Finds an example binary of the workspace where Cargo built it.
//!
//! `scripts/test` builds the examples with `cargo build --examples --message-format=json`
//! and exports each one's path as `PMEM_EXAMPLE_<NAME>` (the VM sees the host's
//! environment). Without it, the path is where Cargo puts the examples of the
//! profile this test binary was built with (`<target>/<profile>/examples/`).

use std::path::PathBuf;

/// The variable that holds example `name`'s path.
fn variable(name: &str) -> String {
    format!("PMEM_EXAMPLE_{}", name.to_uppercase().replace('-', "_"))
}

/// The path of example `name`; panics, saying how to build it, when it is missing.
pub fn example(name: &str) -> PathBuf {
    let path = match std::env::var_os(variable(name)) {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .expect("test binary path")
            .parent()
            .and_then(|deps| deps.parent())
            .expect("test binaries live in <target>/<profile>/deps")
            .join("examples")
            .join(name),
    };
    assert!(
        path.exists(),
        "example {name} not found at {}: build it with `cargo build --workspace --examples` or set {}",
        path.display(),
        variable(name)
    );
    path
}
