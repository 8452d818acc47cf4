//! The committed C header must equal a fresh cbindgen run over the sources.
//! `CDAD_WRITE_HEADER=1` rewrites it instead (scripts/generate-header.sh does that).

use std::path::Path;

fn generate() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let [major, minor, patch] = [
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    ];
    config.after_includes = Some(format!(
        "\n/** Version of this header; compare with cdad_version() at run time. */\n\
         #define CDAD_VERSION_MAJOR {major}\n#define CDAD_VERSION_MINOR {minor}\n#define CDAD_VERSION_PATCH {patch}\n"
    ));
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn committed_header_matches_the_sources() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/cdad.h");
    let fresh = generate();
    if std::env::var_os("CDAD_WRITE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("include/cdad.h is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/cdad.h is stale; run scripts/generate-header.sh and commit the result"
    );
}
