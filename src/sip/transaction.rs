//! Transactions (RFC 3261 §17) as sans-I/O state machines: they are told what arrived and which timer
//! fired, and answer with [`Action`]s (send these bytes, start that timer, the transaction is over).
//! The server core owns them, drives the timers and performs the sends, so every rule here is unit
//! tested without sockets or clocks.
//!
//! - [`InviteServer`]: §17.2.1 — absorbs retransmitted INVITEs by resending the last response; a
//!   non-2xx final is retransmitted on timer G (unreliable transports) until the ACK or timer H; after
//!   the ACK, timer I absorbs ACK retransmissions. A 2xx ends the transaction: the dialog layer
//!   retransmits it until the ACK (§13.3.1.4, [`TwoXxRetransmitter`]).
//! - [`NonInviteServer`]: §17.2.2 — the final response is resent for retransmissions until timer J.
//! - [`NonInviteClient`]: §17.1.2 — for the BYEs slotline sends: timer E retransmits (unreliable),
//!   timer F gives up, timer K absorbs late responses.

use std::time::Duration;

/// RFC 3261 timer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// RTT estimate (500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

/// Timers of §17 (plus the 2xx retransmission of §13.3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE server: retransmit a non-2xx final.
    G,
    /// INVITE server: give up waiting for the ACK.
    H,
    /// INVITE server: absorb ACK retransmissions.
    I,
    /// Non-INVITE server: absorb request retransmissions.
    J,
    /// Non-INVITE client: retransmit the request.
    E,
    /// Non-INVITE client: give up.
    F,
    /// Non-INVITE client: absorb response retransmissions.
    K,
    /// UAS: retransmit a 2xx to INVITE.
    Retransmit2xx,
    /// UAS: stop retransmitting the 2xx (no ACK came).
    GiveUp2xx,
}

/// What the owner of a transaction must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to the peer.
    Send(Vec<u8>),
    /// Fire `Timer` after the duration.
    Start(Timer, Duration),
    /// The transaction is over; forget it.
    Terminate,
    /// (INVITE server) no ACK arrived for the final response; (client) no response arrived.
    TimedOut,
}

/// States of the INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    /// 1xx sent (or nothing yet).
    Proceeding,
    /// Non-2xx final sent, waiting for the ACK.
    Completed,
    /// ACK received.
    Confirmed,
    /// Over.
    Terminated,
}

/// The INVITE server transaction.
#[derive(Debug)]
pub struct InviteServer {
    timing: Timing,
    reliable: bool,
    state: InviteState,
    last: Option<Vec<u8>>,
    g_interval: Duration,
}

impl InviteServer {
    /// A new transaction; `reliable` for TCP.
    pub fn new(timing: Timing, reliable: bool) -> Self {
        Self { timing, reliable, state: InviteState::Proceeding, last: None, g_interval: timing.t1 }
    }

    /// Current state.
    pub fn state(&self) -> InviteState {
        self.state
    }

    /// The INVITE came again: resend the last response (if any).
    pub fn on_retransmission(&mut self) -> Vec<Action> {
        match (&self.state, &self.last) {
            (InviteState::Proceeding | InviteState::Completed, Some(last)) => vec![Action::Send(last.clone())],
            _ => Vec::new(),
        }
    }

    /// The TU responds with `status` (wire `bytes`).
    pub fn respond(&mut self, status: u16, bytes: Vec<u8>) -> Vec<Action> {
        if self.state != InviteState::Proceeding {
            return Vec::new();
        }
        let mut actions = vec![Action::Send(bytes.clone())];
        self.last = Some(bytes);
        match status {
            100..=199 => {}
            200..=299 => {
                self.state = InviteState::Terminated;
                actions.push(Action::Terminate);
            }
            _ => {
                self.state = InviteState::Completed;
                if !self.reliable {
                    actions.push(Action::Start(Timer::G, self.g_interval));
                }
                actions.push(Action::Start(Timer::H, self.timing.t1 * 64));
            }
        }
        actions
    }

    /// An ACK for the non-2xx final arrived.
    pub fn on_ack(&mut self) -> Vec<Action> {
        if self.state != InviteState::Completed {
            return Vec::new();
        }
        self.state = InviteState::Confirmed;
        if self.reliable {
            self.state = InviteState::Terminated;
            vec![Action::Terminate]
        } else {
            vec![Action::Start(Timer::I, self.timing.t4)]
        }
    }

    /// A timer fired.
    pub fn on_timer(&mut self, timer: Timer) -> Vec<Action> {
        match (timer, self.state) {
            (Timer::G, InviteState::Completed) => {
                self.g_interval = (self.g_interval * 2).min(self.timing.t2);
                let mut actions: Vec<Action> = self.last.iter().cloned().map(Action::Send).collect();
                actions.push(Action::Start(Timer::G, self.g_interval));
                actions
            }
            (Timer::H, InviteState::Completed) => {
                self.state = InviteState::Terminated;
                vec![Action::TimedOut, Action::Terminate]
            }
            (Timer::I, InviteState::Confirmed) => {
                self.state = InviteState::Terminated;
                vec![Action::Terminate]
            }
            _ => Vec::new(),
        }
    }
}

/// The non-INVITE server transaction (BYE, CANCEL, OPTIONS, ...).
#[derive(Debug)]
pub struct NonInviteServer {
    timing: Timing,
    reliable: bool,
    last: Option<Vec<u8>>,
    completed: bool,
}

impl NonInviteServer {
    /// A new transaction.
    pub fn new(timing: Timing, reliable: bool) -> Self {
        Self { timing, reliable, last: None, completed: false }
    }

    /// The request came again.
    pub fn on_retransmission(&mut self) -> Vec<Action> {
        self.last.iter().cloned().map(Action::Send).collect()
    }

    /// The TU responds.
    pub fn respond(&mut self, status: u16, bytes: Vec<u8>) -> Vec<Action> {
        if self.completed {
            return Vec::new();
        }
        self.last = Some(bytes.clone());
        let mut actions = vec![Action::Send(bytes)];
        if status >= 200 {
            self.completed = true;
            if self.reliable {
                actions.push(Action::Terminate);
            } else {
                actions.push(Action::Start(Timer::J, self.timing.t1 * 64));
            }
        }
        actions
    }

    /// A timer fired.
    pub fn on_timer(&mut self, timer: Timer) -> Vec<Action> {
        match timer {
            Timer::J if self.completed => vec![Action::Terminate],
            _ => Vec::new(),
        }
    }
}

/// The non-INVITE client transaction (the BYEs slotline sends).
#[derive(Debug)]
pub struct NonInviteClient {
    timing: Timing,
    reliable: bool,
    request: Vec<u8>,
    e_interval: Duration,
    done: bool,
}

impl NonInviteClient {
    /// A transaction for `request`.
    pub fn new(timing: Timing, reliable: bool, request: Vec<u8>) -> Self {
        Self { timing, reliable, request, e_interval: timing.t1, done: false }
    }

    /// Sends the request and starts E (unreliable) and F.
    pub fn start(&mut self) -> Vec<Action> {
        let mut actions = vec![Action::Send(self.request.clone())];
        if !self.reliable {
            actions.push(Action::Start(Timer::E, self.e_interval));
        }
        actions.push(Action::Start(Timer::F, self.timing.t1 * 64));
        actions
    }

    /// A response arrived; `true` when it was final.
    pub fn on_response(&mut self, status: u16) -> Vec<Action> {
        if self.done || status < 200 {
            return Vec::new();
        }
        self.done = true;
        if self.reliable {
            vec![Action::Terminate]
        } else {
            vec![Action::Start(Timer::K, self.timing.t4)]
        }
    }

    /// A timer fired.
    pub fn on_timer(&mut self, timer: Timer) -> Vec<Action> {
        match timer {
            Timer::E if !self.done => {
                self.e_interval = (self.e_interval * 2).min(self.timing.t2);
                vec![Action::Send(self.request.clone()), Action::Start(Timer::E, self.e_interval)]
            }
            Timer::F if !self.done => {
                self.done = true;
                vec![Action::TimedOut, Action::Terminate]
            }
            Timer::K => vec![Action::Terminate],
            _ => Vec::new(),
        }
    }
}

/// Retransmits a 2xx to INVITE until the ACK (RFC 3261 §13.3.1.4): T1, doubling up to T2, for 64·T1.
#[derive(Debug)]
pub struct TwoXxRetransmitter {
    timing: Timing,
    response: Vec<u8>,
    interval: Duration,
    acked: bool,
}

impl TwoXxRetransmitter {
    /// Sends `response` and starts the timers (unreliable transports only retransmit).
    pub fn start(timing: Timing, reliable: bool, response: Vec<u8>) -> (Self, Vec<Action>) {
        let mut actions = vec![Action::Send(response.clone())];
        if !reliable {
            actions.push(Action::Start(Timer::Retransmit2xx, timing.t1));
        }
        actions.push(Action::Start(Timer::GiveUp2xx, timing.t1 * 64));
        (Self { timing, response, interval: timing.t1, acked: false }, actions)
    }

    /// The INVITE was retransmitted: resend the 2xx.
    pub fn on_retransmission(&self) -> Vec<Action> {
        if self.acked {
            Vec::new()
        } else {
            vec![Action::Send(self.response.clone())]
        }
    }

    /// The ACK arrived.
    pub fn on_ack(&mut self) {
        self.acked = true;
    }

    /// Whether the ACK arrived.
    pub fn acked(&self) -> bool {
        self.acked
    }

    /// A timer fired.
    pub fn on_timer(&mut self, timer: Timer) -> Vec<Action> {
        if self.acked {
            return Vec::new();
        }
        match timer {
            Timer::Retransmit2xx => {
                self.interval = (self.interval * 2).min(self.timing.t2);
                vec![Action::Send(self.response.clone()), Action::Start(Timer::Retransmit2xx, self.interval)]
            }
            Timer::GiveUp2xx => {
                self.acked = true;
                vec![Action::TimedOut]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends(actions: &[Action]) -> usize {
        actions.iter().filter(|a| matches!(a, Action::Send(_))).count()
    }

    #[test]
    fn invite_server_absorbs_retransmissions_and_retransmits_non_2xx() {
        let timing = Timing::default();
        let mut tx = InviteServer::new(timing, false);
        assert!(tx.on_retransmission().is_empty(), "nothing sent yet");
        assert_eq!(sends(&tx.respond(100, b"100".to_vec())), 1);
        assert_eq!(tx.on_retransmission(), vec![Action::Send(b"100".to_vec())]);
        let actions = tx.respond(486, b"486".to_vec());
        assert!(actions.contains(&Action::Start(Timer::G, timing.t1)));
        assert!(actions.contains(&Action::Start(Timer::H, timing.t1 * 64)));
        assert_eq!(tx.on_retransmission(), vec![Action::Send(b"486".to_vec())]);
        // G doubles up to T2.
        let mut intervals = Vec::new();
        for _ in 0..5 {
            for action in tx.on_timer(Timer::G) {
                if let Action::Start(Timer::G, d) = action {
                    intervals.push(d.as_millis());
                }
            }
        }
        assert_eq!(intervals, vec![1000, 2000, 4000, 4000, 4000]);
        assert_eq!(tx.on_ack(), vec![Action::Start(Timer::I, timing.t4)]);
        assert_eq!(tx.state(), InviteState::Confirmed);
        assert!(tx.on_timer(Timer::G).is_empty(), "no retransmission after the ACK");
        assert_eq!(tx.on_timer(Timer::I), vec![Action::Terminate]);
    }

    #[test]
    fn invite_server_times_out_without_ack_and_2xx_terminates() {
        let mut tx = InviteServer::new(Timing::default(), true);
        let actions = tx.respond(404, b"404".to_vec());
        assert!(!actions.iter().any(|a| matches!(a, Action::Start(Timer::G, _))), "no G on TCP");
        assert_eq!(tx.on_timer(Timer::H), vec![Action::TimedOut, Action::Terminate]);
        let mut ok = InviteServer::new(Timing::default(), false);
        assert_eq!(ok.respond(200, b"200".to_vec()), vec![Action::Send(b"200".to_vec()), Action::Terminate]);
    }

    #[test]
    fn non_invite_server_resends_final_until_j() {
        let mut tx = NonInviteServer::new(Timing::default(), false);
        assert!(tx.on_retransmission().is_empty());
        let actions = tx.respond(200, b"200".to_vec());
        assert_eq!(actions[1], Action::Start(Timer::J, Duration::from_secs(32)));
        assert_eq!(tx.on_retransmission(), vec![Action::Send(b"200".to_vec())]);
        assert_eq!(tx.on_timer(Timer::J), vec![Action::Terminate]);
    }

    #[test]
    fn non_invite_client_retransmits_and_gives_up() {
        let mut tx = NonInviteClient::new(Timing::default(), false, b"BYE".to_vec());
        assert_eq!(sends(&tx.start()), 1);
        assert_eq!(sends(&tx.on_timer(Timer::E)), 1);
        assert_eq!(tx.on_timer(Timer::F), vec![Action::TimedOut, Action::Terminate]);
        let mut answered = NonInviteClient::new(Timing::default(), false, b"BYE".to_vec());
        answered.start();
        assert!(answered.on_response(100).is_empty());
        assert_eq!(answered.on_response(200), vec![Action::Start(Timer::K, Duration::from_secs(5))]);
        assert!(answered.on_timer(Timer::E).is_empty(), "no retransmission once answered");
    }

    #[test]
    fn two_xx_is_retransmitted_until_ack() {
        let (mut r, actions) = TwoXxRetransmitter::start(Timing::default(), false, b"200".to_vec());
        assert_eq!(sends(&actions), 1);
        assert_eq!(sends(&r.on_timer(Timer::Retransmit2xx)), 1);
        assert_eq!(r.on_retransmission(), vec![Action::Send(b"200".to_vec())]);
        r.on_ack();
        assert!(r.on_timer(Timer::Retransmit2xx).is_empty());
        assert!(r.on_retransmission().is_empty());
        let (mut lost, _) = TwoXxRetransmitter::start(Timing::default(), false, b"200".to_vec());
        assert_eq!(lost.on_timer(Timer::GiveUp2xx), vec![Action::TimedOut]);
    }
}
