//! A room joined through the library: connect, the events that matter to a voice agent, publishing
//! audio and data, and a disconnect that releases every handle.
//!
//! Connect sends `Connect` and waits for `ConnectCallback`; the library then holds back the room's events
//! until `ReadyForRoomEvent` arrives (0.13 requires it: without it the room is closed after 15 s and the
//! library panics), so the room's route is installed first and Ready sent after. The library's room
//! events are turned into the few [`RoomEvent`]s slotline needs on the dispatcher thread; the handles
//! they carry are dropped there unless they become part of an event ([`RemoteAudioTrack`]).
//!
//! Leaving: `Disconnect` is answered by a callback, but the room's events go on after it
//! (`Disconnected`, ...) and end with `RoomEOS`; the room's own handles (room, local participant) are
//! released only then, by the dispatcher, because dropping the room handle earlier cuts those events off.
//! [`Room::disconnect`] waits for that end; dropping a [`Room`] sends the disconnect from a plain thread and
//! leaves the rest to the dispatcher. The library sometimes ends a room it was asked to leave without the
//! `Disconnected` event (about one run in three here); the route then sends one itself, so the receiver
//! always sees `Disconnected` last.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::audio::{AudioSource, AudioStream, RemoteAudioTrack};
use crate::library::{Library, OwnedHandle, Waiter};
use crate::proto::{self, ffi_event, ffi_request, room_event};
use crate::{Ffi, FfiError};

/// How long connecting may take (the library's own signalling timeout is shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the other asynchronous requests (publish, data, DTMF, disconnect) may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest user data packet copied out of an event.
const MAX_DATA_BYTES: usize = 16 << 20;

/// How to join a room.
#[derive(Debug, Clone)]
pub struct RoomOptions {
    /// Subscribe to every remote track as it is published ([`RoomEvent::TrackSubscribed`]).
    pub auto_subscribe: bool,
}

impl Default for RoomOptions {
    fn default() -> Self {
        Self { auto_subscribe: true }
    }
}

/// What kind of client a participant is (LiveKit's `ParticipantKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantKind {
    /// A browser, app or SDK client.
    Standard,
    /// An ingress (RTMP, WHIP, ...).
    Ingress,
    /// An egress (recording, streaming).
    Egress,
    /// A phone call through LiveKit SIP: its attributes carry `sip.phoneNumber`, `sip.trunkPhoneNumber`...
    Sip,
    /// An agent.
    Agent,
    /// A connector.
    Connector,
    /// A bridge.
    Bridge,
    /// A kind this version does not name.
    Other(i32),
}

impl From<i32> for ParticipantKind {
    fn from(kind: i32) -> Self {
        match proto::ParticipantKind::try_from(kind) {
            Ok(proto::ParticipantKind::Standard) => Self::Standard,
            Ok(proto::ParticipantKind::Ingress) => Self::Ingress,
            Ok(proto::ParticipantKind::Egress) => Self::Egress,
            Ok(proto::ParticipantKind::Sip) => Self::Sip,
            Ok(proto::ParticipantKind::Agent) => Self::Agent,
            Ok(proto::ParticipantKind::Connector) => Self::Connector,
            Ok(proto::ParticipantKind::Bridge) => Self::Bridge,
            Err(_) => Self::Other(kind),
        }
    }
}

/// A remote participant.
#[derive(Debug, Clone)]
pub struct Participant {
    /// Its identity (unique in the room).
    pub identity: String,
    /// Its display name.
    pub name: String,
    /// What kind of client it is.
    pub kind: ParticipantKind,
    /// Its attributes (for a SIP participant: `sip.phoneNumber`, `sip.trunkPhoneNumber`, `sip.callID`...).
    pub attributes: HashMap<String, String>,
    /// Its metadata.
    pub metadata: String,
}

impl From<proto::ParticipantInfo> for Participant {
    fn from(info: proto::ParticipantInfo) -> Self {
        Self {
            identity: info.identity,
            name: info.name,
            kind: info.kind.into(),
            attributes: info.attributes,
            metadata: info.metadata,
        }
    }
}

/// What happens in a room, as far as a voice agent cares.
#[derive(Debug)]
pub enum RoomEvent {
    /// A participant joined.
    ParticipantConnected(Participant),
    /// A participant left. The audio streams of its tracks do not end by themselves: stop on this event.
    ParticipantDisconnected {
        /// Its identity.
        identity: String,
        /// LiveKit's `DisconnectReason` name, e.g. `CLIENT_INITIATED`.
        reason: String,
    },
    /// A remote audio track was subscribed (video tracks are not reported); open it with
    /// [`Room::audio_stream`].
    TrackSubscribed {
        /// Whose track it is.
        participant_identity: String,
        /// The track.
        track: RemoteAudioTrack,
    },
    /// A remote track was unsubscribed (its publisher unpublished it or left).
    TrackUnsubscribed {
        /// Whose track it was.
        participant_identity: String,
        /// The track's sid.
        track_sid: String,
    },
    /// A DTMF key from a SIP participant (LiveKit SIP's `SipDTMF` data packet).
    SipDtmf {
        /// Who pressed it.
        participant_identity: String,
        /// The RFC 4733 event code (0–9 digits, 10 `*`, 11 `#`, 12–15 A–D).
        code: u32,
        /// The key as text (`"5"`, `"#"`); may be empty.
        digit: String,
    },
    /// A user data packet.
    Data {
        /// The sender (empty when the server sent it).
        participant_identity: String,
        /// The packet's topic, if it has one.
        topic: Option<String>,
        /// Its payload.
        bytes: Vec<u8>,
    },
    /// This participant left the room (disconnect, room deleted, removed, server gone). Sent exactly once,
    /// last: the event receiver ends right after.
    Disconnected {
        /// LiveKit's `DisconnectReason` name, e.g. `ROOM_DELETED`, or why the library stopped.
        reason: String,
    },
}

/// The dispatcher's route to one room: its event receiver, and the room's own handles, which are released
/// when the library ends the room's events (`RoomEOS`). Dropping the room handle earlier, right after the
/// Disconnect callback, cuts off the events still on their way (`Disconnected` among them).
pub(crate) struct RoomRoute {
    /// Taken at the room's end, which ends the receiver.
    events: Mutex<Option<mpsc::UnboundedSender<RoomEvent>>>,
    closed: watch::Sender<bool>,
    handles: Mutex<Vec<OwnedHandle>>,
    /// Set by the first disconnect (or drop) of the [`Room`].
    leaving: AtomicBool,
    /// Whether the receiver got a [`RoomEvent::Disconnected`].
    said_disconnected: AtomicBool,
}

impl RoomRoute {
    /// Turns one of the library's room events into a [`RoomEvent`] for the receiver; false when the room's
    /// event stream ended (its route is then removed).
    pub(crate) fn deliver(&self, lib: &'static Library, message: room_event::Message) -> bool {
        match translate(lib, message) {
            Translated::Event(event) => {
                self.send(event);
                true
            }
            Translated::Nothing => true,
            Translated::End => {
                // After a disconnect of ours the library sometimes ends the room's events without sending
                // `Disconnected` (its room closes before the last event is forwarded): say it here.
                if !self.said_disconnected.load(Ordering::SeqCst) {
                    let reason = if self.leaving.load(Ordering::SeqCst) {
                        proto::DisconnectReason::ClientInitiated
                    } else {
                        proto::DisconnectReason::UnknownReason
                    };
                    self.send(RoomEvent::Disconnected { reason: reason.as_str_name().to_string() });
                }
                self.close();
                false
            }
        }
    }

    /// The library stopped: the room is gone.
    pub(crate) fn stopped(&self, reason: &str) {
        self.send(RoomEvent::Disconnected { reason: format!("LiveKit FFI library stopped: {reason}") });
        self.close();
    }

    fn send(&self, event: RoomEvent) {
        if matches!(event, RoomEvent::Disconnected { .. }) {
            self.said_disconnected.store(true, Ordering::SeqCst);
        }
        if let Some(events) = &*self.events.lock().unwrap_or_else(PoisonError::into_inner) {
            let _ = events.send(event);
        }
    }

    /// Releases the room's handles and tells [`Room::disconnect`] the room is closed.
    fn close(&self) {
        drop(std::mem::take(&mut *self.handles.lock().unwrap_or_else(PoisonError::into_inner)));
        self.events.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.closed.send_replace(true);
    }
}

/// A room event for a room without a route: only its handles matter.
pub(crate) fn release_unrouted(lib: &'static Library, message: room_event::Message) {
    drop(translate(lib, message));
}

enum Translated {
    Event(RoomEvent),
    Nothing,
    End,
}

fn translate(lib: &'static Library, message: room_event::Message) -> Translated {
    use room_event::Message as M;
    let event = match message {
        M::ParticipantConnected(connected) => {
            lib.drop_handle(connected.info.handle.id);
            RoomEvent::ParticipantConnected(connected.info.info.into())
        }
        M::ParticipantDisconnected(disconnected) => RoomEvent::ParticipantDisconnected {
            identity: disconnected.participant_identity,
            reason: disconnect_reason(disconnected.disconnect_reason),
        },
        M::TrackPublished(published) => {
            lib.drop_handle(published.publication.handle.id);
            return Translated::Nothing;
        }
        M::TrackSubscribed(subscribed) => {
            if subscribed.track.info.kind != proto::TrackKind::KindAudio as i32 {
                lib.drop_handle(subscribed.track.handle.id);
                return Translated::Nothing;
            }
            let identity = subscribed.participant_identity;
            RoomEvent::TrackSubscribed {
                track: RemoteAudioTrack::new(lib, subscribed.track, identity.clone()),
                participant_identity: identity,
            }
        }
        M::TrackUnsubscribed(unsubscribed) => RoomEvent::TrackUnsubscribed {
            participant_identity: unsubscribed.participant_identity,
            track_sid: unsubscribed.track_sid,
        },
        M::DataPacketReceived(packet) => match packet.value {
            Some(proto::data_packet_received::Value::SipDtmf(dtmf)) => RoomEvent::SipDtmf {
                participant_identity: packet.participant_identity,
                code: dtmf.code,
                digit: dtmf.digit.unwrap_or_default(),
            },
            Some(proto::data_packet_received::Value::User(user)) => RoomEvent::Data {
                participant_identity: packet.participant_identity,
                topic: user.topic,
                bytes: copy_buffer(lib, user.data),
            },
            None => return Translated::Nothing,
        },
        M::ByteStreamOpened(opened) => {
            lib.drop_handle(opened.reader.handle.id);
            return Translated::Nothing;
        }
        M::TextStreamOpened(opened) => {
            lib.drop_handle(opened.reader.handle.id);
            return Translated::Nothing;
        }
        M::Disconnected(disconnected) => RoomEvent::Disconnected { reason: disconnect_reason(disconnected.reason) },
        M::Eos(_) => return Translated::End,
        _ => return Translated::Nothing,
    };
    Translated::Event(event)
}

/// Copies a user packet's bytes and drops its buffer handle.
fn copy_buffer(lib: &'static Library, buffer: proto::OwnedBuffer) -> Vec<u8> {
    let len = usize::try_from(buffer.data.data_len).unwrap_or(usize::MAX);
    let bytes = if len == 0 {
        Vec::new()
    } else if buffer.data.data_ptr != 0 && len <= MAX_DATA_BYTES {
        // SAFETY: the library owns `data_len` bytes at `data_ptr` (non-null, checked) until the buffer's
        // handle is dropped, which happens only after this copy.
        unsafe { std::slice::from_raw_parts(buffer.data.data_ptr as *const u8, len) }.to_vec()
    } else {
        tracing::warn!(len, "LiveKit FFI: dropped a data packet with an impossible buffer");
        Vec::new()
    };
    lib.drop_handle(buffer.handle.id);
    bytes
}

fn disconnect_reason(reason: i32) -> String {
    match proto::DisconnectReason::try_from(reason) {
        Ok(reason) => reason.as_str_name().to_string(),
        Err(_) => reason.to_string(),
    }
}

/// A connected room. Dropping it disconnects (in the background) and releases its handles; call
/// [`Room::disconnect`] to wait for that.
pub struct Room {
    lib: &'static Library,
    room: u64,
    local_participant: u64,
    route: Arc<RoomRoute>,
    /// True once the library ended the room's events (and its handles were released).
    closed: watch::Receiver<bool>,
    name: String,
    sid: Option<String>,
    local_identity: String,
    participants: Vec<Participant>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("name", &self.name).field("local_identity", &self.local_identity).finish()
    }
}

impl Room {
    /// Joins the room the token grants (`url`: `ws://` or `wss://` of the LiveKit server). Returns the
    /// room and the receiver of its events; the participants already in the room are
    /// [`Room::participants_at_connect`], and their audio tracks arrive as [`RoomEvent::TrackSubscribed`]
    /// (with auto-subscribe).
    pub async fn connect(
        ffi: &Ffi,
        url: &str,
        token: &str,
        options: RoomOptions,
    ) -> Result<(Room, mpsc::UnboundedReceiver<RoomEvent>), FfiError> {
        let lib = ffi.lib;
        let event = lib
            .request_async(
                "connect",
                |id| {
                    ffi_request::Message::Connect(proto::ConnectRequest {
                        url: url.to_string(),
                        token: token.to_string(),
                        options: proto::RoomOptions {
                            auto_subscribe: Some(options.auto_subscribe),
                            // Audio only: nothing to adapt.
                            adaptive_stream: Some(false),
                            dynacast: Some(false),
                            ..Default::default()
                        },
                        request_async_id: Some(id),
                    })
                },
                None,
                CONNECT_TIMEOUT,
            )
            .await?;
        let ffi_event::Message::Connect(callback) = event else { return Err(FfiError::Unexpected("connect")) };
        let result = match callback.message {
            Some(proto::connect_callback::Message::Result(result)) => result,
            Some(proto::connect_callback::Message::Error(message)) => {
                return Err(FfiError::Failed { op: "connect", message })
            }
            None => return Err(FfiError::Unexpected("connect")),
        };
        let participants = result
            .participants
            .into_iter()
            .map(|present| {
                lib.drop_handle(present.participant.handle.id);
                for publication in present.publications {
                    lib.drop_handle(publication.handle.id);
                }
                Participant::from(present.participant.info)
            })
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(false);
        let route = Arc::new(RoomRoute {
            events: Mutex::new(Some(tx)),
            closed: closed_tx,
            // Released in this order.
            handles: Mutex::new(vec![
                OwnedHandle::new(lib, result.local_participant.handle.id),
                OwnedHandle::new(lib, result.room.handle.id),
            ]),
            leaving: AtomicBool::new(false),
            said_disconnected: AtomicBool::new(false),
        });
        let room = Room {
            lib,
            room: result.room.handle.id,
            local_participant: result.local_participant.handle.id,
            route: route.clone(),
            closed,
            name: result.room.info.name,
            sid: result.room.info.sid,
            local_identity: result.local_participant.info.identity,
            participants,
        };
        // The route first, then Ready: the library releases the held-back events on Ready.
        lib.add_room(room.room, route);
        lib.request(
            "ready_for_room_event",
            ffi_request::Message::ReadyForRoomEvent(proto::ReadyForRoomEventRequest { room_handle: room.room }),
        )?;
        tracing::debug!(room = %room.name, identity = %room.local_identity, "joined LiveKit room");
        Ok((room, rx))
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room's sid, when the server sent it with the join.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// This participant's identity (from the token).
    pub fn local_identity(&self) -> &str {
        &self.local_identity
    }

    /// The remote participants that were in the room when it was joined (later ones arrive as
    /// [`RoomEvent::ParticipantConnected`]).
    pub fn participants_at_connect(&self) -> &[Participant] {
        &self.participants
    }

    /// Publishes a microphone track fed by the returned [`AudioSource`] with mono PCM at `sample_rate`
    /// (8000–48000 Hz, a multiple of 100). `queue_ms` (a multiple of 10): 0 sends each 10 ms frame straight
    /// on (the caller paces them in real time: lowest latency); more lets the library queue that much audio,
    /// so captures wait only when the queue is full and [`AudioSource::clear`] can drop what is queued.
    pub async fn local_audio(&self, sample_rate: u32, queue_ms: u32) -> Result<AudioSource, FfiError> {
        self.check_connected()?;
        if !(8000..=48000).contains(&sample_rate) || sample_rate % 100 != 0 {
            return Err(FfiError::InvalidArgument(format!("sample rate {sample_rate} Hz: use 8000 to 48000")));
        }
        if queue_ms % 10 != 0 || queue_ms > 10_000 {
            return Err(FfiError::InvalidArgument(format!("queue of {queue_ms} ms: use a multiple of 10 up to 10000")));
        }
        let lib = self.lib;
        let response = lib.request(
            "new_audio_source",
            ffi_request::Message::NewAudioSource(proto::NewAudioSourceRequest {
                r#type: proto::AudioSourceType::AudioSourceNative as i32,
                options: Some(proto::AudioSourceOptions {
                    echo_cancellation: false,
                    noise_suppression: false,
                    auto_gain_control: false,
                    prefer_hardware: None,
                }),
                sample_rate: Some(sample_rate),
                num_channels: Some(1),
                queue_size_ms: Some(queue_ms),
                platform_audio_handle: None,
            }),
        )?;
        let proto::ffi_response::Message::NewAudioSource(source) = response else {
            return Err(FfiError::Unexpected("new_audio_source"));
        };
        let source = OwnedHandle::new(lib, source.source.handle.id);
        let response = lib.request(
            "create_audio_track",
            ffi_request::Message::CreateAudioTrack(proto::CreateAudioTrackRequest {
                name: "microphone".into(),
                source_handle: source.id(),
            }),
        )?;
        let proto::ffi_response::Message::CreateAudioTrack(track) = response else {
            return Err(FfiError::Unexpected("create_audio_track"));
        };
        let track = OwnedHandle::new(lib, track.track.handle.id);
        let local_participant = self.local_participant;
        let track_id = track.id();
        let event = lib
            .request_async(
                "publish_track",
                |id| {
                    ffi_request::Message::PublishTrack(proto::PublishTrackRequest {
                        local_participant_handle: local_participant,
                        track_handle: track_id,
                        options: proto::TrackPublishOptions {
                            source: Some(proto::TrackSource::SourceMicrophone as i32),
                            ..Default::default()
                        },
                        request_async_id: Some(id),
                    })
                },
                None,
                REQUEST_TIMEOUT,
            )
            .await?;
        let ffi_event::Message::PublishTrack(callback) = event else {
            return Err(FfiError::Unexpected("publish_track"));
        };
        let publication = match callback.message {
            Some(proto::publish_track_callback::Message::Publication(publication)) => publication,
            Some(proto::publish_track_callback::Message::Error(message)) => {
                return Err(FfiError::Failed { op: "publish_track", message })
            }
            None => return Err(FfiError::Unexpected("publish_track")),
        };
        let publication = OwnedHandle::new(lib, publication.handle.id);
        Ok(AudioSource::new(lib, source, track, publication, sample_rate, queue_ms))
    }

    /// Opens a subscribed remote audio track as a stream of mono PCM frames of `frame_ms` (10 to 100, a
    /// multiple of 10) at `sample_rate` (8000–48000 Hz); the library decodes and resamples.
    pub fn audio_stream(
        &self,
        track: &RemoteAudioTrack,
        sample_rate: u32,
        frame_ms: u32,
    ) -> Result<AudioStream, FfiError> {
        self.check_connected()?;
        AudioStream::open(self.lib, track, sample_rate, frame_ms)
    }

    /// Sends a DTMF key as LiveKit SIP's `SipDTMF` data packet; LiveKit SIP plays it into the call.
    pub async fn publish_sip_dtmf(&self, code: u32, digit: &str) -> Result<(), FfiError> {
        self.check_connected()?;
        let local_participant = self.local_participant;
        let event = self
            .lib
            .request_async(
                "publish_sip_dtmf",
                |id| {
                    ffi_request::Message::PublishSipDtmf(proto::PublishSipDtmfRequest {
                        local_participant_handle: local_participant,
                        code,
                        digit: digit.to_string(),
                        destination_identities: Vec::new(),
                        request_async_id: Some(id),
                    })
                },
                None,
                REQUEST_TIMEOUT,
            )
            .await?;
        match event {
            ffi_event::Message::PublishSipDtmf(callback) => match callback.error {
                None => Ok(()),
                Some(message) => Err(FfiError::Failed { op: "publish_sip_dtmf", message }),
            },
            _ => Err(FfiError::Unexpected("publish_sip_dtmf")),
        }
    }

    /// Sends a user data packet to everyone in the room (`reliable`: ordered and retransmitted).
    pub async fn publish_data(&self, topic: &str, payload: &[u8], reliable: bool) -> Result<(), FfiError> {
        self.check_connected()?;
        let local_participant = self.local_participant;
        // The library reads the bytes while handling the request; the copy lives until its callback.
        let payload: Box<[u8]> = payload.into();
        let (data_ptr, data_len) = (payload.as_ptr() as u64, payload.len() as u64);
        let event = self
            .lib
            .request_async(
                "publish_data",
                |id| {
                    ffi_request::Message::PublishData(proto::PublishDataRequest {
                        local_participant_handle: local_participant,
                        data_ptr,
                        data_len,
                        reliable,
                        topic: Some(topic.to_string()),
                        request_async_id: Some(id),
                        ..Default::default()
                    })
                },
                Some(Box::new(payload)),
                REQUEST_TIMEOUT,
            )
            .await?;
        match event {
            ffi_event::Message::PublishData(callback) => match callback.error {
                None => Ok(()),
                Some(message) => Err(FfiError::Failed { op: "publish_data", message }),
            },
            _ => Err(FfiError::Unexpected("publish_data")),
        }
    }

    /// Leaves the room and waits until the library closed it and its handles are released; the event
    /// receiver gets [`RoomEvent::Disconnected`] and then ends. Calling it again (or after the server closed
    /// the room) does nothing. Audio sources and streams of the room should be dropped first (their handles
    /// are released when they are).
    pub async fn disconnect(&self) -> Result<(), FfiError> {
        if *self.closed.borrow() || self.route.leaving.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (lib, room) = (self.lib, self.room);
        let (tx, rx) = oneshot::channel();
        // Disconnect may wait on the library's runtime: send it from a blocking thread, not an async worker.
        let sent = tokio::task::spawn_blocking(move || {
            lib.send_async("disconnect", |id| disconnect_request(room, id), Waiter::Reply { tx, keep: None })
        })
        .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(self.give_up(e)),
            Err(e) => return Err(self.give_up(FfiError::Stopped(format!("disconnect: {e}")))),
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(self.give_up(lib.stopped_error())),
            Err(_) => return Err(self.give_up(FfiError::Timeout("disconnect", REQUEST_TIMEOUT))),
        }
        // The events that follow the callback end with RoomEOS, which releases the handles.
        let mut closed = self.closed.clone();
        let ended = tokio::time::timeout(REQUEST_TIMEOUT, closed.wait_for(|closed| *closed)).await.is_ok();
        if !ended {
            return Err(self.give_up(FfiError::Timeout("the room's end after disconnect", REQUEST_TIMEOUT)));
        }
        Ok(())
    }

    /// A disconnect that went wrong: release the handles now rather than never.
    fn give_up(&self, error: FfiError) -> FfiError {
        tracing::warn!(room = %self.name, "LiveKit FFI: {error}; releasing the room's handles");
        self.lib.remove_room(self.room);
        self.route.close();
        error
    }

    fn check_connected(&self) -> Result<(), FfiError> {
        if *self.closed.borrow() || self.route.leaving.load(Ordering::SeqCst) {
            return Err(FfiError::Disconnected);
        }
        Ok(())
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if *self.closed.borrow() || self.route.leaving.swap(true, Ordering::SeqCst) {
            return;
        }
        // Disconnect from a plain thread; the room's route releases the handles at the room's end.
        let (lib, room) = (self.lib, self.room);
        let work = move || {
            let then: Box<dyn FnOnce(&'static Library, ffi_event::Message) + Send> = Box::new(|_, _| {});
            if let Err(e) = lib.send_async("disconnect", |id| disconnect_request(room, id), Waiter::Then(then)) {
                tracing::warn!(room, "LiveKit FFI: disconnect of a dropped room failed: {e}");
            }
        };
        if let Err(e) = std::thread::Builder::new().name("livekit-ffi-disconnect".into()).spawn(work) {
            tracing::warn!(room = %self.name, "LiveKit FFI: cannot start a thread to disconnect a dropped room: {e}");
        }
    }
}

fn disconnect_request(room: u64, id: u64) -> ffi_request::Message {
    ffi_request::Message::Disconnect(proto::DisconnectRequest {
        room_handle: room,
        request_async_id: Some(id),
        reason: Some(proto::DisconnectReason::ClientInitiated as i32),
    })
}

/// Disconnects a room nobody ever had (its connect callback came after the caller gave up), from a plain
/// thread, and releases `handles` once the library answered.
pub(crate) fn disconnect_and_release(lib: &'static Library, room: u64, handles: Vec<OwnedHandle>) {
    let work = move || {
        let release: Box<dyn FnOnce(&'static Library, ffi_event::Message) + Send> = Box::new(move |_, _| drop(handles));
        if let Err(e) = lib.send_async("disconnect", |id| disconnect_request(room, id), Waiter::Then(release)) {
            tracing::warn!(room, "LiveKit FFI: disconnect of a dropped room failed: {e}");
        }
    };
    if let Err(e) = std::thread::Builder::new().name("livekit-ffi-disconnect".into()).spawn(work) {
        tracing::warn!(room, "LiveKit FFI: cannot start a thread to disconnect a dropped room: {e}");
    }
}
