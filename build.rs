//! Embeds the libtorch library folder as an rpath, so test binaries, the shared library
//! and programs linked against it find libtorch without LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
        println!("cargo:rustc-env=CDAD_LIBTORCH_LIB={lib_dir}");
    }
}
