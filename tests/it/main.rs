//! Integration tests: the real server on port 0, the real binary, SQLite and PostgreSQL (the server at
//! `IT_POSTGRES_URL`, which `scripts/test.sh` starts for the run), real sockets and real peers (promtool, sipp,
//! espeak-ng), the real speech model, and spoken calls through all of it.

mod helpers;

mod analytics;
mod api_agents;
mod api_limits;
mod api_numbers;
mod api_records;
mod calcom;
mod calcom_double;
mod calendars;
mod chat;
mod cli;
mod console;
mod dialogs;
mod dialplan;
mod hostile;
mod layering;
mod livekit;
mod livekit_call;
mod livekit_rig;
mod livekit_sip;
mod llm;
mod llm_double;
mod local;
mod metrics;
mod netns;
mod no_panic;
mod openai_speech_double;
mod schemathesis;
mod secrets;
mod settings_table;
mod sip;
mod softphone;
#[cfg(feature = "whisper")]
mod speech;
mod speech_engines;
mod spoken;
mod store;
#[cfg(feature = "whisper")]
mod voice_call;
#[cfg(feature = "whisper")]
mod voice_caller;
mod voice_default;
mod voice_drain;
