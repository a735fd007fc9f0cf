//! Writes the CRD YAML generated from the Rust types.
//!
//! `cargo run -p vigil-crds --bin crdgen [DIR...]` writes every CRD into each DIR; without
//! arguments into `crds/` and `charts/vigil/crds/` of this checkout.

use std::path::PathBuf;

use anyhow_free::run;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crdgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

mod anyhow_free {
    use super::PathBuf;

    /// Why crdgen failed.
    #[derive(Debug, thiserror::Error)]
    pub enum CrdgenError {
        /// Serialising a CRD failed.
        #[error("serialising {file}: {source}")]
        Yaml {
            file: String,
            #[source]
            source: serde_yaml::Error,
        },
        /// Writing a file failed.
        #[error("writing {path}: {source}")]
        Write {
            path: String,
            #[source]
            source: std::io::Error,
        },
    }

    pub fn run() -> Result<(), CrdgenError> {
        let mut dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
        if dirs.is_empty() {
            let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            dirs.push(crate_dir.clone());
            dirs.push(crate_dir.join("../charts/vigil/crds"));
        }
        for (file, crd) in vigil_crds::crds() {
            let yaml = vigil_crds::crd_yaml(&crd).map_err(|source| CrdgenError::Yaml {
                file: file.clone(),
                source,
            })?;
            for dir in &dirs {
                std::fs::create_dir_all(dir).map_err(|source| CrdgenError::Write {
                    path: dir.display().to_string(),
                    source,
                })?;
                let path = dir.join(&file);
                std::fs::write(&path, &yaml).map_err(|source| CrdgenError::Write {
                    path: path.display().to_string(),
                    source,
                })?;
                println!("wrote {}", path.display());
            }
        }
        Ok(())
    }
}
