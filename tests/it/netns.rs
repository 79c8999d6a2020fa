//! Tests that need hosts of their own: WebRTC peers (livekit-server, livekit-sip, the LiveKit FFI) gather
//! candidates on every non-loopback interface, and nothing a test starts may talk to anything but
//! loopback or hosts the test made. So such a test runs inside a new network namespace: its outer half
//! ([`run_inside`]) re-executes this test binary under `unshare -n` for the inner half (an `#[ignore]`d
//! test that only runs there), whose [`TestNet::up`] makes `lo` and a veth pair with two TEST-NET-1
//! addresses, both ends inside the namespace. No route leads anywhere else.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

/// Set in the inner run's environment.
const INSIDE: &str = "IT_NETNS";

/// The servers' host (livekit-server, Redis).
pub const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// The second host (livekit-sip; the SIP caller uses [`SERVER_IP`]'s side too).
pub const SIP_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
/// The interface holding [`SERVER_IP`].
pub const SERVER_IF: &str = "lkv0";

/// Runs the `#[ignore]`d test `inner` (its full path in this binary) in a new network namespace and fails
/// with its output unless it passes. Needs root (CI runs as root).
pub fn run_inside(inner: &str) {
    assert!(std::env::var_os(INSIDE).is_none(), "already inside a test namespace");
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new("unshare")
        .args(["--net", "--pid", "--fork", "--kill-child", "--"])
        .arg(exe)
        .args(["--exact", inner, "--ignored", "--nocapture", "--test-threads", "1"])
        .env(INSIDE, "1")
        .output()
        .expect("run unshare (util-linux)");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        !text.contains("unshare failed") && !text.contains("Operation not permitted"),
        "cannot make a network namespace (this test needs root): {text}"
    );
    eprintln!("{text}");
    assert!(output.status.success(), "the test inside the namespace failed:\n{text}");
    assert!(text.contains("1 passed"), "the inner test did not run:\n{text}");
}

/// The namespace's links; made once per inner run.
pub struct TestNet;

impl TestNet {
    /// Brings `lo` up and adds the veth pair; fails unless run inside [`run_inside`].
    pub fn up() -> Self {
        assert!(std::env::var_os(INSIDE).is_some(), "run this test through its outer test (run_inside)");
        let commands = [
            "ip link set lo up",
            "ip link add lkv0 type veth peer name lkv1",
            "ip addr add 192.0.2.1/24 dev lkv0",
            "ip addr add 192.0.2.2/24 dev lkv1",
            "ip link set lkv0 up",
            "ip link set lkv1 up",
        ];
        for command in commands {
            let mut words = command.split(' ');
            let program = words.next().expect("program");
            let status = Command::new(program).args(words).status().expect("run ip (iproute2)");
            assert!(status.success(), "`{command}` failed");
        }
        Self
    }
}
