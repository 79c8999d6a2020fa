//! The real binary against thousands of broken SIP messages, over UDP and TCP: it keeps answering, exits
//! cleanly on SIGTERM, and writes nothing to standard error but its own log lines (no panic message).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpStream, UdpSocket};

use crate::helpers::{command, free_port, ServeProcess};

/// Well-formed messages the mutations start from.
fn seeds(port: u16) -> Vec<String> {
    let via = format!("Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-seed;rport\r\n");
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 101\r\n\
               a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let request = |method: &str, body: &str| {
        format!(
            "{method} sip:+15550100999@127.0.0.1 SIP/2.0\r\n{via}From: <sip:a@127.0.0.1>;tag=f\r\n\
             To: <sip:+15550100999@127.0.0.1>\r\nCall-ID: seed@127.0.0.1\r\nCSeq: 1 {method}\r\n\
             Contact: <sip:a@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    vec![
        request("INVITE", sdp),
        request("OPTIONS", ""),
        request("BYE", ""),
        request("CANCEL", ""),
        request("ACK", ""),
        format!("SIP/2.0 200 OK\r\n{via}Call-ID: seed@127.0.0.1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"),
    ]
}

/// One broken variant of `seed`: bytes flipped, cut, repeated or spliced, or a field given a hostile value.
fn mutate(seed: &str, rng: &mut StdRng) -> Vec<u8> {
    const HOSTILE: [&str; 8] =
        ["99999999999999999999", "-1", "", "\u{0}", "%%%", "SIP/9.9", "\r\n\r\n", "\u{feff}\u{202e}"];
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..rng.gen_range(1..6) {
        let at = rng.gen_range(0..bytes.len().max(1));
        match rng.gen_range(0..6) {
            0 => bytes[at] = rng.gen(),
            1 => bytes.truncate(at),
            2 => {
                let end = (at + rng.gen_range(1..200)).min(bytes.len());
                let copy = bytes[at..end].repeat(rng.gen_range(1..50));
                bytes.splice(at..at, copy);
            }
            3 => {
                let hostile = HOSTILE[rng.gen_range(0..HOSTILE.len())].as_bytes();
                let end = (at + rng.gen_range(0..12)).min(bytes.len());
                bytes.splice(at..end, hostile.iter().copied());
            }
            4 => bytes.insert(at, b':'),
            _ => bytes.retain(|b| *b != b'\r' || rng.gen_bool(0.5)),
        }
        if bytes.is_empty() {
            bytes.push(b'\n');
        }
    }
    bytes.truncate(60_000);
    bytes
}

/// Stops the server with SIGTERM; its exit status and what it wrote to standard error.
async fn stop(server: ServeProcess) -> (std::process::ExitStatus, String) {
    server.terminate();
    server.exit(Duration::from_secs(30)).await
}

/// An OPTIONS from `socket` is answered 200 (the server is alive and has read everything sent before).
/// Sent again every second, as a UDP client retransmits: the answers to the junk may fill the socket's
/// buffer and push the 200 out.
async fn answers_options(socket: &UdpSocket, sip: std::net::SocketAddr, n: usize) -> bool {
    let port = socket.local_addr().expect("addr").port();
    let probe = format!(
        "OPTIONS sip:slotline@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-probe-{n}\r\n\
         From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:slotline@127.0.0.1>\r\nCall-ID: probe-{n}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let mut buf = vec![0u8; 65_536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        socket.send_to(probe.as_bytes(), sip).await.expect("probe");
        let resend = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Ok((len, _))) = tokio::time::timeout_at(resend, socket.recv_from(&mut buf)).await {
            let text = String::from_utf8_lossy(&buf[..len]);
            if text.starts_with("SIP/2.0 200") && text.contains(&format!("Call-ID: probe-{n}")) {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_sip_never_reaches_stderr_as_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sip_port = free_port();
    let sip: std::net::SocketAddr = format!("127.0.0.1:{sip_port}").parse().expect("addr");
    let mut serve = command();
    serve
        .env("SLOTLINE_DATA_DIR", dir.path())
        .env("SLOTLINE_VOICE__ENABLED", "false")
        .env("SLOTLINE_SIP__ADDR", sip.to_string())
        .env("SLOTLINE_SIP__INVITES_PER_SECOND", "100000")
        .env("SLOTLINE_LOG__LEVEL", "debug");
    let server = ServeProcess::start(serve, &["--api-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"]);
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    while !answers_options(&socket, sip, attempt).await {
        assert!(Instant::now() < deadline, "slotline did not start answering SIP");
        attempt += 1;
    }

    let seeds = seeds(port);
    let mut rng = StdRng::seed_from_u64(0x5107_11e5);
    for round in 0..30 {
        for _ in 0..100 {
            let seed = &seeds[rng.gen_range(0..seeds.len())];
            socket.send_to(&mutate(seed, &mut rng), sip).await.expect("send");
        }
        // Over TCP the same junk arrives as a stream, cut anywhere.
        if let Ok(mut stream) = TcpStream::connect(sip).await {
            for _ in 0..10 {
                let seed = &seeds[rng.gen_range(0..seeds.len())];
                if stream.write_all(&mutate(seed, &mut rng)).await.is_err() {
                    break;
                }
            }
        }
        if !answers_options(&socket, sip, 1000 + round).await {
            let (_, stderr) = stop(server).await;
            let tail: Vec<&str> = stderr.lines().rev().take(60).collect();
            panic!(
                "slotline stopped answering after round {round}:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    let (status, stderr) = stop(server).await;
    assert!(status.success(), "graceful exit after SIGTERM: {status}\n{stderr}");
    assert!(!stderr.contains("panicked"), "a panic reached stderr:\n{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "a panic reached stderr:\n{stderr}");
    assert!(stderr.contains("slotline is serving"), "stderr holds the log: {stderr}");
}
