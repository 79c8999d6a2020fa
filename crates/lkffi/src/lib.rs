//! A safe async binding to LiveKit's official FFI library, `liblivekit_ffi.so`: the Rust SDK compiled as
//! a C library, the engine of LiveKit's Python and Node SDKs. slotline's worker joins LiveKit rooms through
//! it because the `livekit` crate's build downloads libwebrtc, which cannot happen here.
//!
//! **One pinned artifact.** The library comes from the PyPI wheel `livekit==1.2.1` (livekit-ffi 0.13.2;
//! `scripts/setup.sh --livekit` installs it by hash). The protobuf types are generated (prost, no protoc)
//! from the FileDescriptorSet derived from the same wheel's `_pb2` modules (`proto/`, see
//! `proto/SOURCE.md`). Protocols of other versions differ on the wire (0.12's `ParticipantInfo` is
//! numbered differently), so [`Ffi::load`] refuses any library whose `build_version()` is not
//! [`EXPECTED_VERSION`].
//!
//! **The protocol.** Every call is one encoded `FfiRequest` to `livekit_ffi_request`, answered at once by
//! an `FfiResponse` (whose bytes belong to a handle that is dropped after decoding). Requests that take
//! time (connect, publish, capture, data, disconnect) answer with an async id, and their result arrives
//! later as an `FfiEvent` through the callback given to `livekit_ffi_initialize`, as do room events and
//! audio frames. Everything the library hands out (`Owned*`: rooms, participants, tracks, publications,
//! sources, streams, every received frame and data buffer) is a handle we must drop with
//! `livekit_ffi_drop_handle`; this crate wraps each in a value that drops it. The library is a
//! process-wide singleton with threads of its own: loaded once, never unloaded. See [`library`]'s module
//! docs for the C ABI and the event routing, [`room`] for the room's lifecycle.
//!
//! **The API** (tokio):
//!
//! ```text
//! Ffi::load(path) -> Result<Ffi, FfiError>                       // once per process; Copy handle
//! Ffi::default_path(data_dir) -> PathBuf                         // <data_dir>/livekit/liblivekit_ffi.so
//! Room::connect(&ffi, url, token, RoomOptions { auto_subscribe })
//!     .await -> Result<(Room, mpsc::UnboundedReceiver<RoomEvent>), FfiError>
//! room.participants_at_connect() -> &[Participant]               // identity, name, kind, attributes
//! room.local_audio(sample_rate, queue_ms).await -> Result<AudioSource, FfiError>   // a published mic track
//!     source.capture(&pcm).await -> Result<(), FfiError>      // 10 ms multiples, one in flight
//!     source.clear() -> Result<(), FfiError>                  // barge-in: drop what is queued
//! room.audio_stream(&track, sample_rate, frame_ms) -> Result<AudioStream, FfiError>
//!     stream.recv().await -> Option<AudioFrame>               // Vec<i16> mono at sample_rate
//!     stream.jitter_buffer().await -> Result<Option<JitterBuffer>, FfiError>  // libwebrtc's receive delay
//! room.publish_sip_dtmf(code, digit).await, room.publish_data(topic, bytes, reliable).await
//! room.disconnect().await                                        // Drop also disconnects, in the background
//! ```
//!
//! [`RoomEvent`]s: `ParticipantConnected(Participant)`, `ParticipantDisconnected { identity, reason }`,
//! `TrackSubscribed { participant_identity, track: RemoteAudioTrack }` (audio only),
//! `TrackUnsubscribed { participant_identity, track_sid }`, `SipDtmf { participant_identity, code, digit }`,
//! `Data { participant_identity, topic, bytes }`, `Disconnected { reason }`; the receiver ends after the
//! room closed. Several rooms may be open at once.
//!
//! Notes for users: an [`AudioStream`] does not end when its participant leaves (end the session on
//! `ParticipantDisconnected`); the library logs to stderr through its own logger (errors only, `RUST_LOG`
//! changes that); libwebrtc `connect()`s a UDP socket to a public DNS address to find its default route
//! (no packet is sent).

mod audio;
mod error;
pub mod library;
pub mod room;
mod stats;

pub use audio::{AudioFrame, AudioSource, AudioStream, RemoteAudioTrack};
pub use error::FfiError;
pub use library::{Ffi, EXPECTED_VERSION};
pub use room::{Participant, ParticipantKind, Room, RoomEvent, RoomOptions};
pub use stats::JitterBuffer;

/// The FFI protocol's messages, generated from the pinned descriptor set (`proto/`). Field documentation
/// is in the wheel's `livekit/rtc/_proto/*_pb2.pyi` files (the descriptors carry no comments).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::undocumented_unsafe_blocks)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/livekit.proto.rs"));
}
