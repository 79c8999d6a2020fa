//! The RTP port pool: even ports in `rtp.port_min..=rtp.port_max` (RTCP on the next odd port), picked at
//! random among the free ones (so no one can guess the next call's port from the last one), and released
//! when a call's socket drops.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use rand::Rng as _;
use tokio::net::UdpSocket;

/// Shared pool of RTP ports.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    /// Ports in use (by our calls, or found taken by someone else during this allocation).
    used: Mutex<HashSet<u16>>,
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
        self.pool.used.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.port);
    }
}

impl PortPool {
    /// A pool on `ip` between `min` and `max` (inclusive).
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Arc<Self> {
        let min = min + (min % 2);
        Arc::new(Self { ip, min, max, used: Mutex::new(HashSet::new()) })
    }

    /// Number of even ports whose odd sibling is in the range too.
    fn pairs(&self) -> u16 {
        if self.max <= self.min {
            return 0;
        }
        (self.max - self.min - 1) / 2 + 1
    }

    /// Claims a random free even port, or `None` when every pair is in use.
    fn claim(&self) -> Option<u16> {
        let pairs = self.pairs();
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if pairs == 0 || used.len() >= usize::from(pairs) {
            return None;
        }
        // A random start, then the next free pair: uniform enough, and bounded when the pool is nearly full.
        let start = rand::thread_rng().gen_range(0..pairs);
        let port = (0..pairs).map(|i| self.min + 2 * ((start + i) % pairs)).find(|p| !used.contains(p))?;
        used.insert(port);
        Some(port)
    }

    /// Binds a random free even port and its odd sibling.
    pub async fn allocate(self: &Arc<Self>) -> std::io::Result<RtpPorts> {
        let mut taken_elsewhere = Vec::new();
        let result = loop {
            let Some(candidate) = self.claim() else {
                break Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "no free RTP port in rtp.port_min..rtp.port_max",
                ));
            };
            let bound = async {
                let rtp = UdpSocket::bind(SocketAddr::new(self.ip, candidate)).await?;
                let rtcp = UdpSocket::bind(SocketAddr::new(self.ip, candidate + 1)).await?;
                Ok::<_, std::io::Error>((rtp, rtcp))
            }
            .await;
            match bound {
                Ok((rtp, rtcp)) => break Ok(RtpPorts { rtp, rtcp, port: candidate, pool: self.clone() }),
                // Another program holds it: stay claimed until this allocation ends, so it is tried once.
                Err(_) => taken_elsewhere.push(candidate),
            }
        };
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        for port in taken_elsewhere {
            used.remove(&port);
        }
        result
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

    #[tokio::test]
    async fn ports_are_not_handed_out_in_order() {
        let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 42000, 42999);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(pool.allocate().await.expect("port"));
        }
        let ports: Vec<u16> = held.iter().map(RtpPorts::port).collect();
        assert!(ports.iter().all(|p| p % 2 == 0 && (42000..=42998).contains(p)), "{ports:?}");
        let in_order = ports.windows(2).all(|w| w[1] == w[0] + 2);
        assert!(!in_order, "the next call's port must not follow from the last one: {ports:?}");
    }
}
