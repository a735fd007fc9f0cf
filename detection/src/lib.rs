//! Vigil detection logic.
