//! The RTP port pool: even ports in `rtp.port_min..=rtp.port_max` (RTCP on the next odd port), handed
//! out round-robin so a just-freed port is not reused at once, and released when a call's socket drops.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

/// Shared pool of RTP ports.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    state: Mutex<(u16, HashSet<u16>)>,
}

/// A bound RTP socket and its RTCP sibling; the port returns to the pool when this drops.
#[derive(Debug)]
pub struct RtpPorts {
    /// RTP socket.
    pub rtp: UdpSocket,
    /// RTCP socket (RTP port + 1).
    pub rtcp: UdpSocket,
    port: u16,
    pool: Arc<PortPool>,
}

impl RtpPorts {
    /// The RTP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RtpPorts {
    fn drop(&mut self) {
        self.pool.state.lock().unwrap_or_else(|e| e.into_inner()).1.remove(&self.port);
    }
}

impl PortPool {
    /// A pool on `ip` between `min` and `max` (inclusive).
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Arc<Self> {
        let min = min + (min % 2);
        Arc::new(Self { ip, min, max, state: Mutex::new((min, HashSet::new())) })
    }

    /// Binds the next free even port and its odd sibling.
    pub async fn allocate(self: &Arc<Self>) -> std::io::Result<RtpPorts> {
        let span = usize::from((self.max.saturating_sub(self.min)) / 2 + 1);
        for _ in 0..span {
            let candidate = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let port = state.0;
                state.0 = if port.saturating_add(2) > self.max.saturating_sub(1) { self.min } else { port + 2 };
                if state.1.contains(&port) {
                    continue;
                }
                state.1.insert(port);
                port
            };
            let bound = async {
                let rtp = UdpSocket::bind(SocketAddr::new(self.ip, candidate)).await?;
                let rtcp = UdpSocket::bind(SocketAddr::new(self.ip, candidate + 1)).await?;
                Ok::<_, std::io::Error>((rtp, rtcp))
            }
            .await;
            match bound {
                Ok((rtp, rtcp)) => return Ok(RtpPorts { rtp, rtcp, port: candidate, pool: self.clone() }),
                Err(_) => {
                    self.state.lock().unwrap_or_else(|e| e.into_inner()).1.remove(&candidate);
                }
            }
        }
        Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free RTP port in rtp.port_min..rtp.port_max"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_out_distinct_even_ports_and_recycles_them() {
        let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 41001, 41007);
        let a = pool.allocate().await.expect("a");
        let b = pool.allocate().await.expect("b");
        assert_eq!((a.port() % 2, b.port() % 2), (0, 0));
        assert_ne!(a.port(), b.port());
        let c = pool.allocate().await.expect("c");
        assert!(pool.allocate().await.is_err(), "three pairs fit in 41002..=41007");
        drop(b);
        let d = pool.allocate().await.expect("freed port is reused");
        assert!(d.port() >= 41002 && d.port() <= 41006);
        drop((a, c, d));
    }
}
