//! Text-to-speech engines behind [`super::TextToSpeech`], and sentence splitting for speaking a reply
//! as it is ready.
//!
//! - [`espeak`]: the `espeak-ng` program (run as a separate process: its library is GPL-3.0).

pub mod espeak;

/// The sentences of `text`, each with its closing punctuation: a reply can be spoken sentence by
/// sentence, so the caller hears the first one while the rest is synthesized. A sentence ends at `.`,
/// `!` or `?` followed by white space or the end (so `2.30` and `e.g.x` stay whole).
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            return None;
        }
        let end = trimmed
            .char_indices()
            .find(|&(i, c)| {
                matches!(c, '.' | '!' | '?')
                    && trimmed[i + c.len_utf8()..].chars().next().is_none_or(char::is_whitespace)
            })
            .map_or(trimmed.len(), |(i, c)| i + c.len_utf8());
        let (sentence, after) = trimmed.split_at(end);
        rest = after;
        let sentence = sentence.trim();
        if !sentence.is_empty() {
            return Some(sentence);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::sentences;

    #[test]
    fn replies_split_into_sentences() {
        let reply = "I have 2.30 pm free. Shall I book it?  Great!  Bye";
        assert_eq!(sentences(reply).collect::<Vec<_>>(), ["I have 2.30 pm free.", "Shall I book it?", "Great!", "Bye"]);
        assert_eq!(sentences("  ").count(), 0);
        assert_eq!(sentences("Wait... what?").collect::<Vec<_>>(), ["Wait...", "what?"]);
    }
}
