//! Links libndctl and libdaxctl, found with pkg-config; with the `bindgen` feature it also
//! regenerates their bindings from the installed headers (otherwise `src/bindings.rs` is used).
//!
//! With `DOCS_RS` set (docs.rs, or a documentation build on a machine without the C libraries)
//! nothing is probed or linked: rustdoc needs neither.

use std::process::exit;

/// Stops the build with one line that names the Debian package to install.
fn missing(what: &str, package: &str) -> ! {
    println!("cargo:warning=ndctl-sys: {what}: install the Debian package {package}");
    eprintln!("ndctl-sys: {what}: install the Debian package {package}");
    exit(1);
}

/// Finds `lib` with pkg-config, which also tells Cargo how to link it.
fn probe(lib: &str, package: &str) -> pkg_config::Library {
    pkg_config::Config::new()
        .probe(lib)
        .unwrap_or_else(|e| missing(&format!("{lib} not found by pkg-config ({e})"), package))
}

fn main() {
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    let libs = if std::env::var_os("DOCS_RS").is_some() {
        Vec::new()
    } else {
        vec![
            probe("libndctl", "libndctl-dev (and pkg-config)"),
            probe("libdaxctl", "libdaxctl-dev (and pkg-config)"),
        ]
    };
    #[cfg(feature = "bindgen")]
    generate::bindings(&libs);
    #[cfg(not(feature = "bindgen"))]
    drop(libs);
}

#[cfg(feature = "bindgen")]
mod generate {
    //! Runs bindgen over `wrapper.h` into `$OUT_DIR/bindings.rs`.

    use super::missing;
    use std::path::PathBuf;

    /// Generates the bindings for the Rust version the crate declares, naming the library
    /// versions they were read from in the first lines.
    pub fn bindings(libs: &[pkg_config::Library]) {
        println!("cargo:rerun-if-changed=wrapper.h");
        println!("cargo:rerun-if-changed=Cargo.toml"); // rust-version sets the bindgen target
        let msrv = std::env::var("CARGO_PKG_RUST_VERSION").expect("Cargo.toml sets rust-version");
        let target: bindgen::RustTarget = msrv.parse().expect("rust-version is a Rust version");
        let versions: Vec<String> = ["libndctl", "libdaxctl"]
            .iter()
            .zip(libs)
            .map(|(name, lib)| format!("{name} {}", lib.version))
            .collect();
        let mut builder = bindgen::Builder::default()
            .header("wrapper.h")
            .rust_target(target)
            .raw_line(format!("// From the headers of {}.", versions.join(", ")))
            .raw_line("// Regenerate with scripts/bindings; do not edit.")
            .allowlist_function("ndctl_.*")
            .allowlist_function("daxctl_.*")
            .allowlist_type("ndctl_.*")
            .allowlist_type("daxctl_.*")
            .allowlist_var("ND_.*")
            .allowlist_var("NDCTL_.*")
            .allowlist_var("DAXCTL_.*")
            .prepend_enum_name(false)
            .default_enum_style(bindgen::EnumVariation::Consts)
            .layout_tests(false)
            .generate_comments(false);
        for p in libs.iter().flat_map(|l| l.include_paths.iter()) {
            builder = builder.clang_arg(format!("-I{}", p.display()));
        }
        // bindgen panics when it cannot load libclang; turn that into the one-line message.
        std::panic::set_hook(Box::new(|_| {}));
        let generated =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
        let _ = std::panic::take_hook();
        let bindings = match generated {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => missing(&format!("bindgen failed ({e})"), "clang and libclang-dev"),
            Err(_) => missing("libclang could not be loaded", "libclang-dev"),
        };
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        bindings
            .write_to_file(out.join("bindings.rs"))
            .expect("OUT_DIR is writable");
    }
}
