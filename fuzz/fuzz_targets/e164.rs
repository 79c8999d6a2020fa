//! Fuzzes the one E.164 normaliser (`dialplan::e164`) that SIP (Request-URI, To, From), the API and
//! dialplan files share: whatever it accepts is `+` and 8 to 15 digits, and normalises to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slotline::dialplan::e164;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(number) = e164::normalize(&text) {
        let digits = number.as_str().strip_prefix('+').expect("a leading +");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{number:?}");
        assert!((8..=15).contains(&digits.len()) && !digits.starts_with('0'), "{number:?}");
        assert_eq!(e164::normalize(number.as_str()).ok().as_ref(), Some(&number), "idempotent");
    }
    let _ = e164::normalize_prefix(&text);
});
