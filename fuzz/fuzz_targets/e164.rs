//! Fuzzes the one E.164 normaliser (`phone`) that SIP (Request-URI, To, From), the API and
//! dialplan files share: whatever it accepts is `+` and 8 to 15 digits, and normalises to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slotline::phone;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(number) = phone::normalize(&text) {
        let digits = number.as_str().strip_prefix('+').expect("a leading +");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{number:?}");
        assert!((8..=15).contains(&digits.len()) && !digits.starts_with('0'), "{number:?}");
        assert_eq!(phone::normalize(number.as_str()).ok().as_ref(), Some(&number), "idempotent");
    }
    let _ = phone::normalize_prefix(&text);
});
