//! Finds libndctl and libdaxctl with pkg-config and generates their bindings with bindgen.

use std::path::PathBuf;
use std::process::exit;

/// Stops the build with one line that names the Debian package to install.
fn missing(what: &str, package: &str) -> ! {
    println!("cargo:warning=ndctl-sys: {what}: install the Debian package {package}");
    eprintln!("ndctl-sys: {what}: install the Debian package {package}");
    exit(1);
}

fn probe(lib: &str, package: &str) -> pkg_config::Library {
    pkg_config::Config::new()
        .probe(lib)
        .unwrap_or_else(|e| missing(&format!("{lib} not found by pkg-config ({e})"), package))
}

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    let ndctl = probe("libndctl", "libndctl-dev (and pkg-config)");
    let daxctl = probe("libdaxctl", "libdaxctl-dev (and pkg-config)");
    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
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
    for p in ndctl
        .include_paths
        .iter()
        .chain(daxctl.include_paths.iter())
    {
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
