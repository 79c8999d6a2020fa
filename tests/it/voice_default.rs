//! The agents' default voice is understood on the phone: the agent's own sentences (its replies in the
//! text dialog corpus: offers, read-backs with names, spelled e-mail addresses and phone numbers,
//! confirmations), spoken by the default engine (hibari through the sidecar slotline carries), through
//! G.711 μ-law, transcribed by the project's whisper, score a word error rate of at most 5 %. espeak-ng,
//! the fallback, is measured beside it with `IT_COMPARE_ESPEAK=1`.
//!
//! Both sides are normalised the same way before words are counted, so that what a recogniser writes
//! differently but means the same is not an error: case and punctuation; "a.m." as "am"; "@" as "at"; a
//! dot between letters as "dot"; numbers (digits, number words and ordinals) as their digits one by one;
//! runs of single letters (a spelled address) as one word.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use slotline::agent::nlu;
use slotline::config::Config;
use slotline::media::codec::Codec;
use slotline::speech::stt::whisper::{WhisperOptions, WhisperStt};
use slotline::speech::tts::espeak::EspeakTts;
use slotline::speech::tts::external::ExternalTts;
use slotline::speech::tts::hibari::{self, Choice};
use slotline::speech::{tts, SpeechToText, TextToSpeech};

use crate::dialogs;
use crate::speech::{model_path, through_g711};

/// Sentences spoken per voice.
const SENTENCES: usize = 32;
/// The default voice's word error rate may not exceed this.
const MAX_WER: f64 = 0.05;

/// The agent's sentences in the dialog corpus, the ones with something to get right (a time, a day, a
/// name, an address, a number) first, `SENTENCES` of them, in a fixed order.
async fn agent_sentences() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dialogs");
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("dialogs").filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut seen = BTreeSet::new();
    let (mut telling, mut plain) = (Vec::new(), Vec::new());
    for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let fixture = dialogs::load(path).expect("fixture");
        let played = dialogs::play(&fixture, path, None).await.expect("plays");
        for line in played.transcript.lines() {
            let Some(say) = line.strip_prefix("agent: ").or_else(|| line.strip_prefix("agent (interim): ")) else {
                continue;
            };
            for sentence in tts::sentences(say) {
                let sentence = sentence.trim().to_string();
                if sentence.split_whitespace().count() < 3 || !seen.insert(sentence.clone()) {
                    continue;
                }
                let has_value = sentence.chars().any(|c| c.is_ascii_digit()) || sentence.contains(" dot ");
                if has_value {
                    telling.push(sentence)
                } else {
                    plain.push(sentence)
                }
            }
        }
    }
    // Every third sentence without a value, for the phrasing around the values.
    let mut chosen: Vec<String> = Vec::new();
    let (mut telling, mut plain) = (telling.into_iter(), plain.into_iter());
    while chosen.len() < SENTENCES {
        let next = if chosen.len() % 3 == 2 { plain.next().or_else(|| telling.next()) } else { telling.next() };
        match next {
            Some(sentence) => chosen.push(sentence),
            None => break,
        }
    }
    chosen
}

/// `text` as the words that are compared.
fn normalise(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace("a.m.", " am ").replace("p.m.", " pm ").replace('@', " at ");
    let chars: Vec<char> = lower.chars().collect();
    let mut spaced = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let between_letters = |j: usize| chars.get(j).is_some_and(|c| c.is_alphabetic());
        if c == '.' && i > 0 && between_letters(i - 1) && between_letters(i + 1) {
            spaced.push_str(" dot ");
        } else if c.is_alphanumeric() || c == '\'' {
            spaced.push(c);
        } else {
            spaced.push(' ');
        }
    }
    let words: Vec<&str> = spaced.split_whitespace().map(|w| w.trim_matches('\'')).filter(|w| !w.is_empty()).collect();
    // Formatting a recogniser adds or drops around numbers that says nothing: "the" before a date's day
    // ("Tuesday 1st" for "Tuesday the 1st") and zero minutes ("2.00 pm" for "2 PM").
    let is_digits = |w: &str| w.chars().all(|c| c.is_ascii_digit());
    let raw: Vec<&str> = (0..words.len())
        .filter(|&i| !(words[i] == "the" && words.get(i + 1).is_some_and(|w| number(w).is_some())))
        .filter(|&i| !(words[i] == "00" && i > 0 && is_digits(words[i - 1])))
        .map(|i| words[i])
        .collect();
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let (value, used) = match (number(raw[i]), raw.get(i + 1).and_then(|w| number(w))) {
            // "thirty one", "twenty first": one number.
            (Some((tens, Kind::Tens)), Some((unit, Kind::Unit))) if unit.len() == 1 && unit != "0" => {
                (Some((format!("{}{unit}", &tens[..1]), Kind::Unit)), 2)
            }
            (value, _) => (value, 1),
        };
        match value {
            Some((digits, _)) => words.extend(digits.chars().map(String::from)),
            None if raw[i] == "o'clock" => {}
            None => match raw[i].find(|c: char| c.is_alphabetic()).filter(|&at| at > 0) {
                // "9am": the number, then "am".
                Some(at) if raw[i][..at].chars().all(|c| c.is_ascii_digit()) => {
                    words.extend(raw[i][..at].chars().map(String::from));
                    words.push(raw[i][at..].to_string());
                }
                _ => words.push(raw[i].to_string()),
            },
        }
        i += used;
    }
    join_letters(words)
}

/// What a number word is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// "twenty" to "fifty" (and their ordinals): a unit may follow.
    Tens,
    /// Anything else.
    Unit,
}

/// A number word, ordinal or digits (with an ordinal ending) as its digits, read as the agent's own
/// language understanding reads them.
fn number(word: &str) -> Option<(String, Kind)> {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_digit()) {
        return Some((word.to_string(), Kind::Unit));
    }
    let value = nlu::number(word).or_else(|| nlu::ordinal(word))?;
    let tens = matches!(value, 20 | 30 | 40 | 50) && !word.starts_with(|c: char| c.is_ascii_digit());
    Some((value.to_string(), if tens { Kind::Tens } else { Kind::Unit }))
}

/// Runs of two or more single letters (a spelled address) as one word.
fn join_letters(words: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut run = String::new();
    let single = |w: &str| w.chars().count() == 1 && w.chars().all(|c| c.is_alphabetic());
    for word in words {
        if single(&word) {
            run.push_str(&word);
            continue;
        }
        if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
        out.push(word);
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// Word-level edit distance.
fn edits(reference: &[String], heard: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=heard.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in heard.iter().enumerate() {
            let substitution = diagonal + usize::from(r != h);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[heard.len()]
}

/// The word error rate of `voice` over `sentences` (errors, words), printing each miss.
async fn word_errors(name: &str, voice: &dyn TextToSpeech, stt: &WhisperStt, sentences: &[String]) -> (usize, usize) {
    let (mut errors, mut words) = (0, 0);
    for sentence in sentences {
        let audio = voice.synthesize(sentence).await.unwrap_or_else(|e| panic!("{name} speaks `{sentence}`: {e}"));
        // A third of a second of line silence first, as on a call.
        let mut padded = vec![0i16; 2_400];
        padded.extend_from_slice(&through_g711(Codec::Pcmu, &audio));
        let heard = stt.transcribe(&padded).await.expect("transcribes").text;
        let (reference, hypothesis) = (normalise(sentence), normalise(&heard));
        let missed = edits(&reference, &hypothesis);
        if missed > 0 {
            eprintln!("{name}: {missed} of {} words: `{sentence}` heard as `{heard}`", reference.len());
        }
        errors += missed;
        words += reference.len();
    }
    (errors, words)
}

/// The Python with hibari-tts that `scripts/setup.sh --test` makes.
fn hibari_python() -> PathBuf {
    crate::helpers::setup_file("IT_HIBARI_PYTHON", "hibari/python")
}

/// Given the agent's own sentences from the dialog corpus, when the default voice speaks them over
/// G.711 and whisper transcribes them, then at most 5 % of the words are heard wrong; espeak-ng's figure
/// is printed beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of several minutes on slow machines: bench/voice_wer.sh runs it"]
async fn the_default_voice_is_understood_on_the_phone() {
    let sentences = agent_sentences().await;
    assert_eq!(sentences.len(), SENTENCES, "the corpus has enough agent sentences");
    for (form, found) in [
        ("a time", sentences.iter().any(|s| s.contains(" AM") || s.contains(" PM"))),
        ("a spelled address", sentences.iter().any(|s| s.contains(" dot ") && s.contains("spelled"))),
        ("a phone number", sentences.iter().any(|s| s.chars().filter(|c| c.is_ascii_digit()).count() >= 7)),
        ("a confirmation", sentences.iter().any(|s| s.to_lowercase().contains("booked"))),
    ] {
        assert!(found, "the sentences include {form}: {sentences:#?}");
    }

    let mut config = Config { data_dir: PathBuf::from("/nonexistent"), ..Config::default() };
    config.speech.hibari.python = Some(hibari_python());
    let Choice::Hibari(sidecar) = hibari::choose(&config) else { panic!("the default engine is hibari") };
    let default_voice = ExternalTts::start(&sidecar).await.expect("the hibari sidecar starts");
    let stt = WhisperStt::load(&model_path(), WhisperOptions::default()).await.expect("model loads");

    let rate = |e: usize, w: usize| e as f64 / w.max(1) as f64;
    let (errors, words) = word_errors("hibari", &default_voice, &stt, &sentences).await;
    eprintln!(
        "word error rate over {} sentences ({words} words): hibari (default) {:.1} %",
        sentences.len(),
        rate(errors, words) * 100.0
    );
    // The fallback's figure, for the docs (it doubles the test's time): IT_COMPARE_ESPEAK=1.
    if std::env::var_os("IT_COMPARE_ESPEAK").is_some() {
        let espeak = EspeakTts::new(&config.speech.tts_voice, config.speech.tts_rate).expect("espeak-ng");
        let (espeak_errors, espeak_words) = word_errors("espeak-ng", &espeak, &stt, &sentences).await;
        eprintln!("word error rate: espeak-ng (fallback) {:.1} %", rate(espeak_errors, espeak_words) * 100.0);
    }
    assert!(words >= 300, "enough words to measure: {words}");
    assert!(rate(errors, words) <= MAX_WER, "the default voice: {errors} of {words} words heard wrong");
}

#[test]
fn both_sides_are_normalised_alike() {
    let same = |a: &str, b: &str| assert_eq!(normalise(a), normalise(b), "`{a}` and `{b}`");
    same("Wednesday the 9th at 9:30 AM.", "wednesday the ninth at nine thirty a.m.");
    same("ada at example dot com, spelled A D A", "ADA@example.com spelled A-D-A.");
    same("at 9 AM", "at 9am");
    same("Tuesday the 1st at 2 PM", "Tuesday 1st at 2.00 pm");
    same("at 10 AM", "at 10 a.m.");
    same("+1 555 123 4567", "1-555-123-4567");
    same("the 21st", "the twenty first");
    assert_eq!(edits(&normalise("at 9 AM on Friday"), &normalise("at nine on Friday")), 1);
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dialogs").is_dir());
}
