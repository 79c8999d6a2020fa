//! Plain telephone audio, shared by the ways in, the media path and the speech engines: the sample
//! rate, the 20 ms frame, and WAV files ([`wav`]). It imports nothing of the crate, so every layer may
//! use it.

pub mod wav;

/// Sample rate of everything on the telephone side, and of every PCM buffer the speech engines take or
/// return.
pub const RATE: u32 = 8000;

/// Samples in one 20 ms frame at [`RATE`].
pub const FRAME: usize = 160;

/// One 20 ms frame of 8 kHz PCM.
pub type Frame = [i16; FRAME];
