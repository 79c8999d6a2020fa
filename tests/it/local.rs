//! What tests and benchmarks find on this machine: free loopback ports and the files `scripts/setup.sh`
//! makes. Shared by the integration tests and the benchmarks in `examples/` (included by path).

use std::path::PathBuf;

/// A TCP port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// A port on `ip` free for UDP and TCP, with `port + 2` free for UDP too: a SIP peer (sipp, baresip)
/// listens on both transports, and sipp puts its media two ports up.
pub fn free_sip_port(ip: std::net::IpAddr) -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind((ip, 0)).expect("bind");
        let port = udp.local_addr().expect("addr").port();
        let media_free = port <= u16::MAX - 2 && std::net::UdpSocket::bind((ip, port + 2)).is_ok();
        if media_free && std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free SIP port on {ip}");
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
