//! Vigil custom resource types (filled by the operator work).
