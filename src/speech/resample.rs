//! Sample-rate conversion by a rational factor: a polyphase windowed-sinc filter.
//!
//! The telephone side is 8 kHz; whisper wants 16 kHz, espeak-ng speaks at 22.05 kHz. A rate change by
//! `up / down` (8 k → 16 k is 2/1, 22 050 → 8 000 is 160/441) upsamples by `up`, low-passes below the
//! lower Nyquist rate, and keeps every `down`-th sample; the polyphase form only computes the kept
//! samples, with one short dot product each. The low-pass (Blackman-windowed sinc) passes the telephone
//! band (up to 0.4 × the lower rate, 3.2 kHz for 8 kHz) and stops above the lower Nyquist frequency, so
//! downsampling does not alias and upsampling adds no images.
//!
//! [`Resampler`] is streaming: it keeps the last inputs between calls, so audio can be fed in frames of
//! any size, and it appends to a caller's buffer, so steady use allocates nothing. [`resample`] converts
//! a whole buffer.

use std::f64::consts::PI;

/// Fraction of the lower rate where the filter's transition band is centred (0.45 × 8 kHz = 3.6 kHz).
const CUTOFF: f64 = 0.45;
/// Width of the transition band as a fraction of the lower rate (0.1 × 8 kHz = 800 Hz).
const TRANSITION: f64 = 0.1;
/// A Blackman window's transition width is about 5.5 / (filter length) of the sample rate.
const BLACKMAN_WIDTH: f64 = 5.5;

/// A streaming rate converter from one fixed rate to another.
#[derive(Debug, Clone)]
pub struct Resampler {
    up: usize,
    down: usize,
    taps: usize,
    /// `up` phases of `taps` coefficients each, every phase reversed so it lines up with the history.
    phases: Vec<f32>,
    /// The last `taps - 1` inputs (zeros at first), then the inputs not yet consumed.
    history: Vec<f32>,
    /// Index in `history` of the newest input the next output depends on.
    next: usize,
    /// Phase (0..up) of the next output.
    phase: usize,
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz. Panics if either rate is zero.
    pub fn new(from: u32, to: u32) -> Self {
        assert!(from > 0 && to > 0, "sample rates must be positive");
        let divisor = gcd(from, to);
        let (up, down) = ((to / divisor) as usize, (from / divisor) as usize);
        let lower = f64::from(from.min(to));
        let taps = ((BLACKMAN_WIDTH * f64::from(from) / (TRANSITION * lower)).ceil() as usize).max(2);
        let length = taps * up;
        // Cutoff in cycles per sample of the upsampled signal.
        let cutoff = CUTOFF * lower / (f64::from(from) * up as f64);
        let centre = (length - 1) as f64 / 2.0;
        let prototype: Vec<f64> = (0..length)
            .map(|n| {
                let x = n as f64 - centre;
                let sinc = if x == 0.0 { 2.0 * cutoff } else { (2.0 * PI * cutoff * x).sin() / (PI * x) };
                let w = 2.0 * PI * n as f64 / (length - 1) as f64;
                sinc * (0.42 - 0.5 * w.cos() + 0.08 * (2.0 * w).cos())
            })
            .collect();
        let mut phases = Vec::with_capacity(length);
        for p in 0..up {
            let coefficients: Vec<f64> = (0..taps).rev().map(|k| prototype[p + k * up]).collect();
            // Each phase sums to 1: a constant signal comes out unchanged, whichever phase computes it.
            let sum: f64 = coefficients.iter().sum();
            phases.extend(coefficients.iter().map(|c| (c / sum) as f32));
        }
        let mut history = Vec::with_capacity(taps * 2 + 1024);
        history.resize(taps - 1, 0.0);
        Self { up, down, taps, phases, history, next: taps - 1, phase: 0 }
    }

    /// Samples of delay the filter adds, at the output rate.
    pub fn delay(&self) -> usize {
        let centre = (self.taps * self.up - 1) as f64 / 2.0;
        (centre / self.down as f64).round() as usize
    }

    /// Converts `input` and appends the result to `output` (about `input.len() × to / from` samples).
    pub fn process(&mut self, input: &[i16], output: &mut Vec<i16>) {
        self.history.extend(input.iter().map(|s| f32::from(*s)));
        output.reserve(input.len() * self.up / self.down + 1);
        while self.next < self.history.len() {
            let window = &self.history[self.next + 1 - self.taps..=self.next];
            let coefficients = &self.phases[self.phase * self.taps..(self.phase + 1) * self.taps];
            let sample: f32 = window.iter().zip(coefficients).map(|(x, c)| x * c).sum();
            output.push(sample.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16);
            self.phase += self.down;
            self.next += self.phase / self.up;
            self.phase %= self.up;
        }
        // Inputs older than the next output's window are done with.
        let consumed = (self.next + 1 - self.taps).min(self.history.len());
        self.history.drain(..consumed);
        self.next -= consumed;
    }

    /// Feeds silence for the filter's delay, so the last real input reaches `output`.
    pub fn flush(&mut self, output: &mut Vec<i16>) {
        let zeros = self.taps.div_ceil(2) + 1;
        for _ in 0..zeros {
            self.history.push(0.0);
        }
        self.process(&[], output);
    }

    /// Converts a whole buffer, aligned in time with the input (the filter's delay is removed):
    /// `input.len() × to / from` samples. Starts from a fresh state and leaves one behind.
    pub fn convert(&mut self, input: &[i16]) -> Vec<i16> {
        self.reset();
        let expected = (input.len() as u64 * self.up as u64 / self.down as u64) as usize;
        let delay = self.delay();
        let mut output = Vec::with_capacity(expected + delay + 2);
        self.process(input, &mut output);
        self.flush(&mut output);
        output.drain(..delay.min(output.len()));
        output.resize(expected, 0);
        self.reset();
        output
    }

    /// Back to the state of a new converter (a new utterance).
    pub fn reset(&mut self) {
        self.history.clear();
        self.history.resize(self.taps - 1, 0.0);
        self.next = self.taps - 1;
        self.phase = 0;
    }
}

/// Converts a whole buffer from `from` Hz to `to` Hz (see [`Resampler::convert`]).
pub fn resample(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
    Resampler::new(from, to).convert(input)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, seconds: f64, amplitude: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n).map(|i| (amplitude * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as i16).collect()
    }

    fn rms(samples: &[i16]) -> f64 {
        (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
    }

    /// Correlation with a reference sine and cosine at `hz`: the tone's amplitude in `samples`.
    fn amplitude_at(samples: &[i16], rate: u32, hz: f64) -> f64 {
        let (mut s, mut c) = (0.0, 0.0);
        for (i, x) in samples.iter().enumerate() {
            let t = 2.0 * PI * hz * i as f64 / f64::from(rate);
            s += f64::from(*x) * t.sin();
            c += f64::from(*x) * t.cos();
        }
        2.0 * (s * s + c * c).sqrt() / samples.len() as f64
    }

    #[test]
    fn ratios_reduce_and_lengths_follow_the_rates() {
        let r = Resampler::new(22050, 8000);
        assert_eq!((r.up, r.down), (160, 441));
        assert_eq!(resample(8000, 16000, &[0; 1600]).len(), 3200);
        assert_eq!(resample(16000, 8000, &[0; 3200]).len(), 1600);
        assert_eq!(resample(22050, 8000, &[0; 22050]).len(), 8000);
    }

    #[test]
    fn a_speech_band_tone_keeps_its_level_and_frequency() {
        for (from, to) in [(8000, 16000), (16000, 8000), (22050, 8000)] {
            let input = tone(from, 1000.0, 0.5, 10000.0);
            let output = resample(from, to, &input);
            let steady = &output[output.len() / 5..output.len() * 4 / 5];
            let level = amplitude_at(steady, to, 1000.0);
            assert!((level - 10000.0).abs() < 150.0, "{from}→{to}: 1 kHz at {level}");
            assert!((rms(steady) - 10000.0 / 2f64.sqrt()).abs() < 150.0, "{from}→{to}: rms {}", rms(steady));
        }
    }

    #[test]
    fn output_is_aligned_with_the_input() {
        // A click at 100 ms stays at 100 ms.
        let mut input = vec![0i16; 22050 / 2];
        input[2205] = 20000;
        input[2206] = 20000;
        let output = resample(22050, 8000, &input);
        let peak = output.iter().enumerate().max_by_key(|(_, s)| s.unsigned_abs()).map(|(i, _)| i);
        assert!(peak.is_some_and(|i| i.abs_diff(800) <= 2), "{peak:?}");
    }

    #[test]
    fn above_the_lower_nyquist_rate_nothing_aliases() {
        // 6 kHz at 22.05 kHz would fold to 2 kHz at 8 kHz without the filter.
        let output = resample(22050, 8000, &tone(22050, 6000.0, 0.5, 10000.0));
        assert!(rms(&output[400..3600]) < 100.0, "{}", rms(&output[400..3600]));
        // Upsampling 8 → 16 kHz puts no image of 3 kHz at 5 kHz.
        let output = resample(8000, 16000, &tone(8000, 3000.0, 0.5, 10000.0));
        assert!(amplitude_at(&output[800..7200], 16000, 5000.0) < 100.0);
    }

    #[test]
    fn streaming_in_frames_matches_one_buffer() {
        let input = tone(8000, 440.0, 0.3, 8000.0);
        let mut whole = Resampler::new(8000, 16000);
        let mut expected = Vec::new();
        whole.process(&input, &mut expected);
        let mut framed = Resampler::new(8000, 16000);
        let mut output = Vec::new();
        for frame in input.chunks(160) {
            framed.process(frame, &mut output);
        }
        assert_eq!(output, expected);
        let mut odd = Resampler::new(22050, 8000);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let input = tone(22050, 440.0, 0.3, 8000.0);
        odd.process(&input, &mut a);
        odd.reset();
        for chunk in input.chunks(37) {
            odd.process(chunk, &mut b);
        }
        assert_eq!(a, b);
    }
}
