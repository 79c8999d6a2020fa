//! The agent's brain: the scheduling conversation, in text, that the voice pipeline and `slotline chat`
//! both drive.
//!
//! - [`tools`]: the tools every dialog engine calls (`list_available_slots`, `schedule_appointment`, ...),
//!   their JSON schemas, and the [`tools::Toolbox`] that runs them against the agent's calendar;
//! - [`dialog`]: the [`dialog::DialogEngine`] trait, the per-conversation [`dialog::CallContext`], the
//!   offline rules engine and the OpenAI-compatible LLM engine;
//! - [`nlu`]: what the rules engine understands: intents, day and time expressions, choices, names, emails;
//! - [`funnel`]: the booking funnel of one conversation and its one outcome, as metrics;
//! - [`calls`]: answered SIP calls meet their agent (the SIP core's call handler);
//! - [`chat`]: `slotline chat`, the terminal conversation;
//! - [`session`]: one call's voice loop (endpointing, STT, the dialog, sentence-by-sentence TTS, barge-in);
//! - [`speak`]: how slots, dates and bookings are said aloud in the agent's time zone.

pub mod calls;
pub mod chat;
pub mod dialog;
pub mod funnel;
pub mod nlu;
pub mod session;
pub mod speak;
pub mod tools;
