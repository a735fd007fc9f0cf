//! Helpers for Vigil's test suites:
//! - [`schema`]: validate objects against the committed CRDs (structure and CEL rules) and
//!   Helm values against `values.schema.json`, as the apiserver and Helm would;
//! - [`template`]: render the plain subset of Go templates the chart uses, since Helm cannot be
//!   installed on the build machines;
//! - [`cluster`] (feature `e2e`): the opt-in end-to-end suite's client helpers.

#[cfg(feature = "e2e")]
pub mod cluster;
pub mod schema;
pub mod template;

use std::path::PathBuf;

/// Root of the repository checkout.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
