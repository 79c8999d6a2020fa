//! The loaded library: its four C functions, the version check, the event callback, and the dispatcher
//! thread that routes every event to whoever waits for it.
//!
//! The C ABI (from the wheel's ctypes client; the header shipped in the wheel is older and lacks two):
//!
//! ```c
//! typedef void (*FfiCallbackFn)(const uint8_t *data, size_t len);   // one encoded FfiEvent
//! void     livekit_ffi_initialize(FfiCallbackFn cb, bool capture_logs, const char *sdk, const char *sdk_version);
//! uint64_t livekit_ffi_request(const uint8_t *req, size_t len, const uint8_t **res, size_t *res_len); // 0: refused
//! bool     livekit_ffi_drop_handle(uint64_t handle);                // false: unknown handle
//! void     livekit_ffi_dispose(void);                               // closes every room; blocks
//! ```
//!
//! Routing: the callback runs on the library's own threads, so it only copies the bytes into a channel. One
//! plain thread (`livekit-ffi-events`) decodes them and routes by key: callbacks of asynchronous requests by
//! the `async_id` this crate chose (the waiter is registered *before* the request is sent, so a callback that
//! overtakes `livekit_ffi_request`'s return still finds it), room events by room handle, audio frames by
//! stream handle. Audio frames that overtake the response creating their stream are kept (bounded) until the
//! stream's route exists. Native buffers in events (audio frames, user data packets) are copied and their
//! handles dropped right there, whether anyone still listens or not.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use prost::Message;
use tokio::sync::oneshot;

use crate::audio::{AudioFrame, StreamRoute};
use crate::proto::{self, ffi_event, ffi_request, ffi_response};
use crate::room::RoomRoute;
use crate::FfiError;

/// The livekit-ffi version whose protocol the generated types come from (PyPI wheel `livekit==1.2.1`).
pub const EXPECTED_VERSION: &str = "0.13.2";

/// The SDK name the library reports to the server; it must be one the library knows (else it warns and
/// reports "unknown").
const SDK: &str = "rust";

/// Frames kept per stream that has no route yet (1 s of 10 ms frames).
const EARLY_FRAMES_PER_STREAM: usize = 100;
/// Streams without a route whose early frames are kept; the oldest go first.
const EARLY_STREAMS: usize = 32;
/// Stream handles recently closed by us: their stray frames and end are dropped, not kept as early.
const CLOSED_STREAMS: usize = 64;
/// The largest frame accepted from the library, in samples (1 s of 48 kHz stereo).
const MAX_FRAME_SAMPLES: usize = 96_000;

type EventCallback = unsafe extern "C" fn(*const u8, usize);
type InitializeFn = unsafe extern "C" fn(EventCallback, bool, *const c_char, *const c_char);
type RequestFn = unsafe extern "C" fn(*const u8, usize, *mut *const u8, *mut usize) -> u64;
type DropHandleFn = unsafe extern "C" fn(u64) -> bool;
type DisposeFn = unsafe extern "C" fn();

// UniFFI scaffolding, used only to read the library's own version (`build_version()`).
/// UniFFI's contract version whose `RustBuffer` layout is the one below.
const UNIFFI_CONTRACT: u32 = 30;
#[repr(C)]
struct RustBuffer {
    capacity: u64,
    len: u64,
    data: *mut u8,
}
#[repr(C)]
struct RustCallStatus {
    code: i8,
    error_buf: RustBuffer,
}
type ContractVersionFn = unsafe extern "C" fn() -> u32;
type BuildVersionFn = unsafe extern "C" fn(*mut RustCallStatus) -> RustBuffer;
type RustBufferFreeFn = unsafe extern "C" fn(RustBuffer, *mut RustCallStatus);

/// Where the callback puts the events' bytes for the dispatcher thread.
static EVENTS: OnceLock<std_mpsc::Sender<Vec<u8>>> = OnceLock::new();
/// The library, once loaded (a process loads it once and never unloads it).
static LOADED: Mutex<Option<&'static Library>> = Mutex::new(None);

/// A handle to LiveKit's FFI library, loaded once per process. Cheap to copy; every [`crate::Room`] made
/// through it shares the library's threads.
#[derive(Clone, Copy)]
pub struct Ffi {
    pub(crate) lib: &'static Library,
}

impl std::fmt::Debug for Ffi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ffi").field("path", &self.lib.path).field("version", &self.lib.version).finish()
    }
}

impl Ffi {
    /// Loads and initializes the library at `path` (slotline's `livekit.ffi_lib`), or returns the one this
    /// process already loaded from that file. Refuses a missing file (naming the setup command), a file
    /// that is not livekit-ffi [`EXPECTED_VERSION`], and a second, different file.
    pub fn load(path: impl AsRef<Path>) -> Result<Ffi, FfiError> {
        let path = path.as_ref();
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lib) = *loaded {
            return if same_file(&lib.path, path) {
                Ok(Ffi { lib })
            } else {
                Err(FfiError::AlreadyLoaded { loaded: lib.path.clone(), requested: path.to_path_buf() })
            };
        }
        if !path.is_file() {
            return Err(FfiError::Missing { path: path.to_path_buf() });
        }
        let lib = Library::open(path)?;
        *loaded = Some(lib);
        Ok(Ffi { lib })
    }

    /// Where setup installs the library: `<data_dir>/livekit/liblivekit_ffi.so` (the default of
    /// `livekit.ffi_lib`).
    pub fn default_path(data_dir: &Path) -> PathBuf {
        data_dir.join("livekit").join("liblivekit_ffi.so")
    }

    /// The version the library reports (always [`EXPECTED_VERSION`]).
    pub fn version(&self) -> &str {
        &self.lib.version
    }

    /// The file the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.lib.path
    }

    /// Closes every room the library still has and stops it (`livekit_ffi_dispose`), for the end of the
    /// process. Blocks until the library is done: call it from a plain thread or `spawn_blocking`, never
    /// from an async task. Every later request fails with [`FfiError::Stopped`].
    pub fn dispose_blocking(&self) {
        self.lib.stop("disposed");
        // SAFETY: `livekit_ffi_dispose` takes no arguments; it is called on a thread of the caller's
        // choosing, which this function's contract keeps off async tasks.
        unsafe { (self.lib.dispose_fn)() }
    }
}

/// What waits for the callback of an asynchronous request.
pub(crate) enum Waiter {
    /// An async caller; `keep` is memory the library reads (a frame, a data packet) that must outlive the
    /// request even when the caller gives up waiting.
    Reply { tx: oneshot::Sender<ffi_event::Message>, keep: Option<Box<dyn Any + Send>> },
    /// Something to do when the callback comes (on the dispatcher thread).
    Then(Box<dyn FnOnce(&'static Library, ffi_event::Message) + Send>),
}

/// An item of an audio stream.
pub(crate) enum StreamItem {
    Frame(AudioFrame),
    End,
}

#[derive(Default)]
struct Routes {
    waiters: HashMap<u64, Waiter>,
    rooms: HashMap<u64, Arc<RoomRoute>>,
    streams: HashMap<u64, StreamRoute>,
    early: HashMap<u64, Vec<StreamItem>>,
    early_order: VecDeque<u64>,
    closed_streams: VecDeque<u64>,
}

/// The loaded library (leaked: it lives as long as the process).
pub(crate) struct Library {
    path: PathBuf,
    version: String,
    request_fn: RequestFn,
    drop_fn: DropHandleFn,
    dispose_fn: DisposeFn,
    routes: Mutex<Routes>,
    /// This crate's async ids start far above the library's own counter (which starts at 1 and is shared
    /// by handles and async ids), so the two never meet.
    next_async_id: AtomicU64,
    stopped: OnceLock<String>,
    _library: libloading::Library,
}

impl Library {
    fn open(path: &Path) -> Result<&'static Library, FfiError> {
        let load_error = |source| FfiError::Load { path: path.to_path_buf(), source };
        // SAFETY: loading runs the library's initializers. The file is LiveKit's FFI library (checked by
        // version right below, before anything else is called); it is made to be loaded this way, as
        // LiveKit's Python and Node SDKs do.
        let library = unsafe { libloading::Library::new(path) }.map_err(load_error)?;
        // SAFETY: the symbols are looked up with the signatures of the library's C ABI (module docs), and
        // the library is never unloaded, so the copied function pointers stay valid.
        let functions = unsafe {
            (|| -> Result<_, libloading::Error> {
                Ok((
                    *library.get::<InitializeFn>(b"livekit_ffi_initialize\0")?,
                    *library.get::<RequestFn>(b"livekit_ffi_request\0")?,
                    *library.get::<DropHandleFn>(b"livekit_ffi_drop_handle\0")?,
                    *library.get::<DisposeFn>(b"livekit_ffi_dispose\0")?,
                ))
            })()
        };
        let version = match library_version(&library) {
            Ok(version) if version == EXPECTED_VERSION => version,
            Ok(other) => return Err(refuse(library, path, other)),
            Err(why) => return Err(refuse(library, path, why)),
        };
        let (initialize, request_fn, drop_fn, dispose_fn) = functions.map_err(load_error)?;

        let (tx, rx) = std_mpsc::channel();
        EVENTS.set(tx).map_err(|_| FfiError::Stopped("the event channel was set up twice".into()))?;
        let lib: &'static Library = Box::leak(Box::new(Library {
            path: path.to_path_buf(),
            version,
            request_fn,
            drop_fn,
            dispose_fn,
            routes: Mutex::new(Routes::default()),
            next_async_id: AtomicU64::new(1 << 60),
            stopped: OnceLock::new(),
            _library: library,
        }));
        std::thread::Builder::new()
            .name("livekit-ffi-events".into())
            .spawn(move || lib.dispatch(rx))
            .map_err(|e| FfiError::Stopped(format!("cannot start the event thread: {e}")))?;
        let sdk = CString::new(SDK).map_err(|e| FfiError::InvalidArgument(e.to_string()))?;
        let sdk_version =
            CString::new(env!("CARGO_PKG_VERSION")).map_err(|e| FfiError::InvalidArgument(e.to_string()))?;
        // SAFETY: `on_event` has the callback's signature and never unwinds; both strings are valid,
        // NUL-terminated and live through the call (the library copies them). `capture_logs = false`: the
        // library logs through its own logger to stderr (RUST_LOG, errors only by default) instead of
        // sending every record as events.
        unsafe { initialize(on_event, false, sdk.as_ptr(), sdk_version.as_ptr()) };
        tracing::info!(path = %path.display(), version = EXPECTED_VERSION, "LiveKit FFI library loaded");
        Ok(lib)
    }

    /// A synchronous request: the response's bytes belong to a handle that is dropped once decoded.
    pub(crate) fn request(
        &self,
        what: &'static str,
        message: ffi_request::Message,
    ) -> Result<ffi_response::Message, FfiError> {
        self.check_running()?;
        let request = proto::FfiRequest { message: Some(message) }.encode_to_vec();
        let mut response: *const u8 = std::ptr::null();
        let mut response_len: usize = 0;
        // SAFETY: `request` is a valid buffer of `request.len()` bytes for the duration of the call; the two
        // out-pointers point at live locals the library writes the response's address and length into.
        let handle = unsafe { (self.request_fn)(request.as_ptr(), request.len(), &mut response, &mut response_len) };
        if handle == 0 {
            return Err(FfiError::Rejected(what));
        }
        let decoded = if response.is_null() {
            Err(FfiError::Unexpected(what))
        } else {
            // SAFETY: on success the library wrote the address and length of the encoded FfiResponse, which
            // stays valid until `handle` is dropped, which happens only after this copy-free decode.
            let bytes = unsafe { std::slice::from_raw_parts(response, response_len) };
            proto::FfiResponse::decode(bytes).map_err(|source| FfiError::Decode { what, source })
        };
        self.drop_handle(handle);
        decoded?.message.ok_or(FfiError::Unexpected(what))
    }

    /// An asynchronous request: `build` gets the async id to put in the request; the result is the
    /// callback event carrying it. `keep` lives until the callback arrives, even if this future is dropped.
    pub(crate) async fn request_async(
        &'static self,
        what: &'static str,
        build: impl FnOnce(u64) -> ffi_request::Message,
        keep: Option<Box<dyn Any + Send>>,
        timeout: Duration,
    ) -> Result<ffi_event::Message, FfiError> {
        let (tx, rx) = oneshot::channel();
        let id = self.send_async(what, build, Waiter::Reply { tx, keep })?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(_)) => Err(self.stopped_error()),
            Err(_) => {
                tracing::warn!(what, id, "LiveKit FFI request timed out");
                Err(FfiError::Timeout(what, timeout))
            }
        }
    }

    /// Registers `waiter` under a fresh async id, then sends the request `build` makes with it.
    pub(crate) fn send_async(
        &self,
        what: &'static str,
        build: impl FnOnce(u64) -> ffi_request::Message,
        waiter: Waiter,
    ) -> Result<u64, FfiError> {
        let id = self.next_async_id.fetch_add(1, Ordering::Relaxed);
        self.routes().waiters.insert(id, waiter);
        if let Err(e) = self.request(what, build(id)) {
            self.routes().waiters.remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    /// Releases a handle the library gave us. Unknown handles (already dropped, or of a closed room) are
    /// harmless.
    pub(crate) fn drop_handle(&self, handle: u64) {
        if handle == 0 {
            return;
        }
        // SAFETY: `livekit_ffi_drop_handle` takes any u64 and returns false for handles it does not know.
        let known = unsafe { (self.drop_fn)(handle) };
        if !known {
            tracing::debug!(handle, "LiveKit FFI: dropped an unknown handle");
        }
    }

    pub(crate) fn add_room(&self, room: u64, route: Arc<RoomRoute>) {
        self.routes().rooms.insert(room, route);
    }

    pub(crate) fn remove_room(&self, room: u64) {
        self.routes().rooms.remove(&room);
    }

    /// Installs a stream's route, first handing it the frames that arrived before it.
    pub(crate) fn add_stream(&self, stream: u64, route: StreamRoute) {
        let mut routes = self.routes();
        let early = routes.early.remove(&stream).unwrap_or_default();
        routes.early_order.retain(|s| *s != stream);
        let mut route = Some(route);
        for item in early {
            if let Some(r) = &route {
                if !r.deliver(item) {
                    route = None;
                }
            }
        }
        if let Some(route) = route {
            routes.streams.insert(stream, route);
        }
    }

    pub(crate) fn remove_stream(&self, stream: u64) {
        let mut routes = self.routes();
        routes.streams.remove(&stream);
        routes.early.remove(&stream);
        routes.early_order.retain(|s| *s != stream);
        routes.closed_streams.push_back(stream);
        if routes.closed_streams.len() > CLOSED_STREAMS {
            routes.closed_streams.pop_front();
        }
    }

    pub(crate) fn stopped_error(&self) -> FfiError {
        FfiError::Stopped(self.stopped.get().cloned().unwrap_or_else(|| "the event thread ended".into()))
    }

    fn check_running(&self) -> Result<(), FfiError> {
        match self.stopped.get() {
            Some(reason) => Err(FfiError::Stopped(reason.clone())),
            None => Ok(()),
        }
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the library stopped and ends every route: waiters get [`FfiError::Stopped`], rooms a
    /// `Disconnected` event, streams their end.
    fn stop(&'static self, reason: &str) {
        let _ = self.stopped.set(reason.to_string());
        let routes = std::mem::take(&mut *self.routes());
        for route in routes.rooms.into_values() {
            route.stopped(reason);
        }
    }

    fn dispatch(&'static self, events: std_mpsc::Receiver<Vec<u8>>) {
        while let Ok(bytes) = events.recv() {
            match proto::FfiEvent::decode(bytes.as_slice()) {
                Ok(proto::FfiEvent { message: Some(message) }) => self.route(message),
                Ok(_) => {}
                Err(e) => tracing::warn!(len = bytes.len(), "LiveKit FFI: undecodable event: {e}"),
            }
        }
    }

    fn route(&'static self, message: ffi_event::Message) {
        use ffi_event::Message as E;
        match message {
            E::RoomEvent(event) => {
                let Some(message) = event.message else { return };
                let route = self.routes().rooms.get(&event.room_handle).cloned();
                match route {
                    Some(route) => {
                        if !route.deliver(self, message) {
                            self.remove_room(event.room_handle);
                        }
                    }
                    None => crate::room::release_unrouted(self, message),
                }
            }
            E::AudioStreamEvent(event) => {
                let item = match event.message {
                    Some(proto::audio_stream_event::Message::FrameReceived(received)) => {
                        match self.copy_frame(received.frame) {
                            Some(frame) => StreamItem::Frame(frame),
                            None => return,
                        }
                    }
                    Some(proto::audio_stream_event::Message::Eos(_)) => StreamItem::End,
                    None => return,
                };
                self.route_stream(event.stream_handle, item);
            }
            E::Logs(batch) => {
                for record in batch.records {
                    match record.level {
                        0 => tracing::error!(target: "livekit_ffi", "{}: {}", record.target, record.message),
                        1 => tracing::warn!(target: "livekit_ffi", "{}: {}", record.target, record.message),
                        _ => tracing::debug!(target: "livekit_ffi", "{}: {}", record.target, record.message),
                    }
                }
            }
            E::Panic(panic) => {
                tracing::error!("LiveKit FFI library panicked: {}", panic.message);
                self.stop(&format!("the library panicked: {}", panic.message));
            }
            other => match async_id(&other) {
                Some(id) => {
                    let waiter = self.routes().waiters.remove(&id);
                    match waiter {
                        Some(Waiter::Reply { tx, keep }) => {
                            if let Err(abandoned) = tx.send(other) {
                                release_abandoned(self, abandoned);
                            }
                            drop(keep);
                        }
                        Some(Waiter::Then(then)) => then(self, other),
                        None => release_abandoned(self, other),
                    }
                }
                None => tracing::trace!("LiveKit FFI: unrouted event {:?}", std::mem::discriminant(&other)),
            },
        }
    }

    fn route_stream(&self, stream: u64, item: StreamItem) {
        let mut routes = self.routes();
        if let Some(route) = routes.streams.get(&stream) {
            if !route.deliver(item) {
                routes.streams.remove(&stream);
            }
            return;
        }
        if routes.closed_streams.contains(&stream) {
            return;
        }
        if !routes.early.contains_key(&stream) {
            routes.early_order.push_back(stream);
            if routes.early_order.len() > EARLY_STREAMS {
                if let Some(oldest) = routes.early_order.pop_front() {
                    routes.early.remove(&oldest);
                }
            }
        }
        let early = routes.early.entry(stream).or_default();
        if early.len() < EARLY_FRAMES_PER_STREAM {
            early.push(item);
        }
    }

    /// Copies a received frame's samples and drops its buffer handle.
    fn copy_frame(&self, frame: proto::OwnedAudioFrameBuffer) -> Option<AudioFrame> {
        let info = &frame.info;
        let samples = (info.samples_per_channel as usize).checked_mul(info.num_channels as usize);
        let copied = match samples {
            Some(n) if n <= MAX_FRAME_SAMPLES && info.data_ptr != 0 && info.data_ptr % 2 == 0 => {
                let ptr = info.data_ptr as *const i16;
                // SAFETY: the library owns a buffer of `samples_per_channel * num_channels` interleaved i16
                // samples at `data_ptr` (non-null and aligned, checked above) until the frame's handle is
                // dropped, which happens only after this copy.
                let samples = unsafe { std::slice::from_raw_parts(ptr, n) }.to_vec();
                Some(AudioFrame { samples, sample_rate: info.sample_rate, channels: info.num_channels })
            }
            _ => {
                tracing::warn!(?info, "LiveKit FFI: dropped an audio frame with an impossible buffer");
                None
            }
        };
        self.drop_handle(frame.handle.id);
        copied
    }
}

/// The library's callback: copies one encoded event and hands it to the dispatcher thread. It must not
/// block and must not unwind into the library.
unsafe extern "C" fn on_event(data: *const u8, len: usize) {
    let _ = std::panic::catch_unwind(|| {
        if data.is_null() {
            return;
        }
        // SAFETY: the library passes one encoded FfiEvent of `len` bytes, valid for the duration of this call;
        // it is copied before the call returns.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
        if let Some(events) = EVENTS.get() {
            let _ = events.send(bytes);
        }
    });
}

/// Reads `build_version()` through the library's UniFFI scaffolding (contract version 30).
fn library_version(library: &libloading::Library) -> Result<String, String> {
    let missing = |_| "unknown (no build_version: an older livekit-ffi)".to_string();
    // SAFETY: the UniFFI symbols are looked up with the signatures UniFFI's contract version 30 defines; the
    // contract version is checked before the others are called.
    unsafe {
        let contract =
            *library.get::<ContractVersionFn>(b"ffi_livekit_ffi_uniffi_contract_version\0").map_err(missing)?;
        let contract = contract();
        if contract != UNIFFI_CONTRACT {
            return Err(format!("unknown (UniFFI contract {contract}, not {UNIFFI_CONTRACT})"));
        }
        let build_version =
            *library.get::<BuildVersionFn>(b"uniffi_livekit_ffi_fn_func_build_version\0").map_err(missing)?;
        let free = *library.get::<RustBufferFreeFn>(b"ffi_livekit_ffi_rustbuffer_free\0").map_err(missing)?;
        let mut status =
            RustCallStatus { code: 0, error_buf: RustBuffer { capacity: 0, len: 0, data: std::ptr::null_mut() } };
        let buffer = build_version(&mut status);
        if status.code != 0 {
            return Err("unknown (build_version failed)".into());
        }
        let version = if buffer.data.is_null() {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(buffer.data, buffer.len as usize)).into_owned()
        };
        free(buffer, &mut status);
        Ok(version)
    }
}

/// Refuses a library: it is leaked rather than unloaded (unloading Rust libraries is not reliably safe),
/// which costs nothing in a process about to report the error.
fn refuse(library: libloading::Library, path: &Path, found: String) -> FfiError {
    std::mem::forget(library);
    FfiError::Version { path: path.to_path_buf(), found }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The async id of the callbacks this crate's requests produce.
fn async_id(message: &ffi_event::Message) -> Option<u64> {
    use ffi_event::Message as E;
    Some(match message {
        E::Connect(c) => c.async_id,
        E::Disconnect(c) => c.async_id,
        E::Dispose(c) => c.async_id,
        E::PublishTrack(c) => c.async_id,
        E::UnpublishTrack(c) => c.async_id,
        E::PublishData(c) => c.async_id,
        E::PublishSipDtmf(c) => c.async_id,
        E::CaptureAudioFrame(c) => c.async_id,
        E::SetLocalMetadata(c) => c.async_id,
        E::SetLocalName(c) => c.async_id,
        E::SetLocalAttributes(c) => c.async_id,
        E::GetStats(c) => c.async_id,
        E::GetSessionStats(c) => c.async_id,
        _ => return None,
    })
}

/// A callback nobody waits for any more (the request's future was dropped or timed out): release what it
/// owns. A room that connected after its caller gave up is disconnected and released.
fn release_abandoned(lib: &'static Library, message: ffi_event::Message) {
    match message {
        ffi_event::Message::Connect(proto::ConnectCallback {
            message: Some(proto::connect_callback::Message::Result(result)),
            ..
        }) => {
            tracing::warn!(room = %result.room.info.name, "LiveKit FFI: a room connected after its caller gave up");
            for participant in result.participants {
                lib.drop_handle(participant.participant.handle.id);
                for publication in participant.publications {
                    lib.drop_handle(publication.handle.id);
                }
            }
            let handles = vec![
                OwnedHandle::new(lib, result.local_participant.handle.id),
                OwnedHandle::new(lib, result.room.handle.id),
            ];
            crate::room::disconnect_and_release(lib, result.room.handle.id, handles);
        }
        ffi_event::Message::PublishTrack(proto::PublishTrackCallback {
            message: Some(proto::publish_track_callback::Message::Publication(publication)),
            ..
        }) => lib.drop_handle(publication.handle.id),
        _ => {}
    }
}

/// A handle the library gave us; dropped (`livekit_ffi_drop_handle`) when this value is.
pub(crate) struct OwnedHandle {
    lib: &'static Library,
    id: u64,
}

impl OwnedHandle {
    pub(crate) fn new(lib: &'static Library, id: u64) -> Self {
        Self { lib, id }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        self.lib.drop_handle(self.id);
    }
}

impl std::fmt::Debug for OwnedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnedHandle({})", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_names_the_setup_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = Ffi::default_path(dir.path());
        assert_eq!(path, dir.path().join("livekit/liblivekit_ffi.so"));
        let error = Ffi::load(&path).unwrap_err().to_string();
        assert!(error.contains("scripts/setup.sh --livekit"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }

    #[test]
    fn a_file_that_is_no_library_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liblivekit_ffi.so");
        std::fs::write(&path, b"not an ELF file").unwrap();
        let error = Ffi::load(&path).unwrap_err();
        assert!(matches!(error, FfiError::Load { .. }), "{error}");
    }

    #[test]
    fn a_library_of_another_version_is_refused_in_one_line() {
        let error = FfiError::Version { path: "/x/liblivekit_ffi.so".into(), found: "0.12.44".into() }.to_string();
        assert_eq!(
            error,
            "/x/liblivekit_ffi.so is livekit-ffi 0.12.44, but slotline speaks livekit-ffi 0.13.2 (PyPI wheel \
             livekit==1.2.1): install it with `scripts/setup.sh --livekit`"
        );
    }
}
