//! Support code shared by node-agent's integration tests (`mod support;` in a test file).

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]
pub mod detection;
#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]
pub mod mock_api;
#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]
pub mod podman;
#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]
pub mod spawn;
