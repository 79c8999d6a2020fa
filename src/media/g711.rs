//! G.711 (ITU-T G.711) μ-law and A-law, sample by sample and slice to slice, without allocation.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// Encodes one 16-bit sample as μ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    let exponent = (7 - ((pcm as u32) << 17).leading_zeros().min(7)) as i32;
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one μ-law byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    let byte = !byte;
    let sign = byte & 0x80;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0f);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes one 16-bit sample as A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3; // A-law works on 13 bits
    let mask = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let pcm = pcm.min(0x0fff);
    let encoded = if pcm < 32 {
        pcm >> 1
    } else {
        let exponent = 31 - (pcm as u32).leading_zeros() as i32 - 4;
        (exponent << 4) | ((pcm >> exponent) & 0x0f)
    };
    (encoded as u8) ^ mask
}

/// Decodes one A-law byte.
pub fn alaw_decode(byte: u8) -> i16 {
    let byte = byte ^ 0x55;
    let exponent = i32::from((byte & 0x70) >> 4);
    let mantissa = i32::from(byte & 0x0f);
    let magnitude = if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    (if byte & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// Decodes `input` into `output` (as many samples as both hold).
pub fn decode(codec: super::codec::Codec, input: &[u8], output: &mut [i16]) -> usize {
    let n = input.len().min(output.len());
    let decode = match codec {
        super::codec::Codec::Pcmu => ulaw_decode,
        super::codec::Codec::Pcma => alaw_decode,
    };
    for (out, byte) in output[..n].iter_mut().zip(input) {
        *out = decode(*byte);
    }
    n
}

/// Encodes `input` into `output` (as many samples as both hold).
pub fn encode(codec: super::codec::Codec, input: &[i16], output: &mut [u8]) -> usize {
    let n = input.len().min(output.len());
    let encode = match codec {
        super::codec::Codec::Pcmu => ulaw_encode,
        super::codec::Codec::Pcma => alaw_encode,
    };
    for (out, sample) in output[..n].iter_mut().zip(input) {
        *out = encode(*sample);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_silence() {
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
    }

    #[test]
    fn every_code_round_trips() {
        for byte in 0..=255u8 {
            let u = ulaw_decode(byte);
            assert_eq!(ulaw_decode(ulaw_encode(u)), u, "μ-law {byte:#x}");
            let a = alaw_decode(byte);
            assert_eq!(alaw_encode(a), byte, "A-law {byte:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_small() {
        for sample in (-32000i16..32000).step_by(97) {
            let u = i32::from(ulaw_decode(ulaw_encode(sample)));
            let a = i32::from(alaw_decode(alaw_encode(sample)));
            let bound = (i32::from(sample).abs() / 16).max(16);
            assert!((u - i32::from(sample)).abs() <= bound, "μ {sample} → {u}");
            assert!((a - i32::from(sample)).abs() <= bound, "A {sample} → {a}");
        }
    }
}
