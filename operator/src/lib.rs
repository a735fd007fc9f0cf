//! The Vigil operator.
