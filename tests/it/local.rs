//! What tests and benchmarks find on this machine: free loopback ports and the files `scripts/setup.sh`
//! makes. Shared by the integration tests and the benchmarks in `examples/` (included by path).

use std::path::PathBuf;

/// A TCP port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// A file `scripts/setup.sh --test` makes under the repository's `data/` (`relative`), or the path in
/// the environment variable `variable` when it is set; fails, naming the fix, if it is missing.
pub fn setup_file(variable: &str, relative: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data").join(relative));
    assert!(path.is_file(), "{} is missing: run scripts/setup.sh --test", path.display());
    path
}
