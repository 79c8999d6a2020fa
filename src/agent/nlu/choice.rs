//! Which of the offered options the caller picks: "the second one", "option 3", "number two", "the last
//! one", "the first", "the early one", or a DTMF digit.

use super::{number, ordinal, Utterance};

/// The 0-based index the caller picks among `count` options.
pub fn pick(u: &Utterance, count: usize) -> Option<usize> {
    let index = |n: u32| (n >= 1 && (n as usize) <= count).then(|| n as usize - 1);
    // Offered options are in time order: "the early one" is the first, "the late one" the last.
    if u.has_any(&["last one", "the last", "latest one", "later one", "late one"]) {
        return count.checked_sub(1);
    }
    if u.has_any(&["earlier one", "earliest one", "early one"]) && count > 0 {
        return Some(0);
    }
    let words = &u.words;
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str);
        let prev = i.checked_sub(1).map(|j| words[j].as_str());
        // "the second one", "the third", "first option" — but not "the third of December".
        if let Some(n) = ordinal(word) {
            let month_near = [prev, next].into_iter().flatten().any(super::when::is_month);
            let as_date = matches!(next, Some("of")) || matches!(prev, Some("on")) || month_near;
            if !as_date && n <= 3 {
                return index(n);
            }
        }
        // "option 2", "number two", "choice three", "slot 1".
        if matches!(prev, Some("option" | "number" | "choice" | "slot")) {
            if let Some(n) = number(word) {
                return index(n);
            }
        }
    }
    // A lone digit or number word: "2", "two", "two please".
    let content: Vec<&String> =
        words.iter().filter(|w| !matches!(w.as_str(), "please" | "the" | "um" | "uh")).collect();
    match content.as_slice() {
        [only] => number(only).and_then(index),
        _ => None,
    }
}

/// The option a DTMF key picks ("1" is the first).
pub fn pick_key(dtmf: &str, count: usize) -> Option<usize> {
    let digit = dtmf.chars().find(char::is_ascii_digit)?.to_digit(10)?;
    (digit >= 1 && digit as usize <= count).then(|| digit as usize - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Option<usize> {
        pick(&Utterance::new(text), 3)
    }

    #[test]
    fn picks_among_offered_options() {
        assert_eq!(of("the second one"), Some(1));
        assert_eq!(of("I'll take the first"), Some(0));
        assert_eq!(of("option 3"), Some(2));
        assert_eq!(of("number two please"), Some(1));
        assert_eq!(of("the last one"), Some(2));
        assert_eq!(of("the early one"), Some(0));
        assert_eq!(of("the late one please"), Some(2));
        assert_eq!(of("two"), Some(1));
        assert_eq!(of("4"), None);
        assert_eq!(of("the third of december"), None);
        assert_eq!(of("tomorrow at 2"), None);
        assert_eq!(pick_key("2", 3), Some(1));
        assert_eq!(pick_key("9", 3), None);
    }
}
