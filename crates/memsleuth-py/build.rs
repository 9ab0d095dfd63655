//! Builds the native instrument's preload library (`memsleuth-preload`, a cdylib of its own that
//! must not be linked into this extension) with a nested cargo, so that its bytes can be embedded
//! here and the wheel carries it: `memsleuth run --native` writes it out once per release and
//! starts the interpreter again with it in `LD_PRELOAD`. Cargo cannot yet depend on another
//! crate's cdylib artifact on stable, hence the nested build, in a target directory of its own.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let preload = manifest.join("../memsleuth-preload");
    let hook = manifest.join("../memsleuth-hook");
    for dir in [&preload, &hook] {
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target = env::var("TARGET").expect("set by cargo");
    let target_dir = out.join("preload-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--package",
            "memsleuth-preload",
            "--target",
        ])
        .arg(&target)
        .arg("--manifest-path")
        .arg(preload.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // the library is small and only forwards: no debug info, symbols kept for dlsym
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // a clippy or coverage wrapper of the outer build is not this build's business
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("cannot run cargo to build memsleuth-preload");
    assert!(status.success(), "building memsleuth-preload failed");
    let built = target_dir
        .join(&target)
        .join("release")
        .join("libmemsleuth_preload.so");
    std::fs::copy(&built, out.join("memsleuth_preload.so"))
        .unwrap_or_else(|e| panic!("cannot copy {}: {e}", built.display()));
}
