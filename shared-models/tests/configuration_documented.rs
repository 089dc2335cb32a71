//! Every environment variable the binaries read is documented in docs/configuration.md.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_variable_read_by_the_code_is_in_docs_configuration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = fs::read_to_string(root.join("docs/configuration.md")).expect("docs/configuration.md");
    let mut files = Vec::new();
    for crate_dir in ["producer", "consumer", "worker", "shared-models", "system-tests"] {
        rust_files(&root.join(crate_dir).join("src"), &mut files);
    }
    let mut variables = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).expect("readable source");
        for piece in text.split("env = \"").skip(1) {
            if let Some((name, _)) = piece.split_once('"') {
                variables.push(name.to_owned());
            }
        }
    }
    assert!(variables.len() > 20, "found only {variables:?}");
    let missing: Vec<&String> = variables
        .iter()
        .filter(|name| !docs.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not documented in docs/configuration.md: {missing:?}"
    );
}
