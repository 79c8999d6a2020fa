//! Fuzzes the date/time reading of caller speech (`agent::nlu::when`), the ordinal and number readers
//! it uses, on any text a speech engine could return, against a few "today"s (month ends, a leap day,
//! year end): nothing may panic, and a day range read is never empty or reversed.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use slotline::agent::nlu::{self, when, Utterance};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let utterance = Utterance::new(&text);
    for (y, m, d) in [(2026, 12, 3), (2028, 2, 29), (2026, 12, 31), (2026, 1, 31)] {
        let Some(today) = NaiveDate::from_ymd_opt(y, m, d) else { continue };
        let read = when::parse(&utterance, today);
        if let Some(days) = read.days {
            assert!(days.first() <= days.last(), "{days:?} for {text:?}");
        }
        let _ = read.is_empty();
    }
    for word in text.split_whitespace().take(64) {
        let _ = (nlu::number(word), nlu::ordinal(word), when::is_month(word));
    }
});
