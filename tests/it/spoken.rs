//! The spoken corpus: conversations as callers have them (`tests/fixtures/spoken/dialogs/*.toml`, the
//! dialog fixture format plus a `category` and per-turn `retry` lines), each played twice over: once as
//! written, every phrase checked, and once per voice with what the project's own speech to text heard of
//! each line (`tests/fixtures/spoken/transcripts.toml`: every line spoken by neural and espeak-ng voices at
//! several speeds, through G.711 μ-law and whisper tiny; `cargo run --example spoken_corpus`
//! renders it again). Heard, only the end counts: the calendar as the caller asked, no booking whose day,
//! time, name or contact differs, and an honest last word where it did not work out.
//!
//! `SPOKEN=<part of a file name>` plays only those dialogs and prints their transcripts; the table (per
//! category and per voice) is printed on every run and kept in `docs/conversation.md`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dialogs::{self, Fixture, Hearing, LEAVE, REFUSE, THE_EMAIL, THE_NAME};

/// What each voice's speech was heard as.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transcripts {
    /// Voice name → how it was made.
    voices: BTreeMap<String, String>,
    #[serde(rename = "line")]
    lines: Vec<Line>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    said: String,
    /// Voice name → transcript.
    heard: BTreeMap<String, String>,
    /// Voice name → the words of its transcript whisper was unsure of (only where there are some).
    #[serde(default)]
    unsure: BTreeMap<String, Vec<String>>,
}

/// One voice's transcripts.
struct Voice<'a> {
    heard: HashMap<&'a str, &'a str>,
    unsure: HashMap<&'a str, &'a [String]>,
}

impl Hearing for Voice<'_> {
    fn heard(&self, line: &str) -> String {
        self.heard.get(line).map_or_else(|| format!("<not rendered: {line}>"), |t| (*t).to_string())
    }

    fn unsure(&self, line: &str) -> Vec<String> {
        self.unsure.get(line).map(|words| words.to_vec()).unwrap_or_default()
    }
}

/// Tallies of one cell of the table.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    dialogs: usize,
    as_asked: usize,
    wrong: usize,
    dishonest: usize,
}

impl Tally {
    fn add(&mut self, played: &dialogs::Played) {
        self.dialogs += 1;
        self.as_asked += usize::from(played.failure.is_none());
        self.wrong += played.wrong.len();
        self.dishonest += usize::from(played.failure.is_some() && !played.honest);
    }

    fn cell(&self) -> String {
        format!("{}/{} ({:.0} %)", self.as_asked, self.dialogs, self.percent())
    }

    /// The dialogs and those that ended as asked, over `cells`.
    fn total<'a>(cells: impl Iterator<Item = &'a Tally>) -> Tally {
        cells.fold(Tally::default(), |mut t, c| {
            t.dialogs += c.dialogs;
            t.as_asked += c.as_asked;
            t
        })
    }

    fn percent(&self) -> f64 {
        100.0 * self.as_asked as f64 / self.dialogs.max(1) as f64
    }
}

pub(crate) fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spoken")
}

fn dialog_paths() -> Vec<PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(corpus_dir().join("dialogs"))
        .expect("tests/fixtures/spoken/dialogs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
}

fn transcripts() -> Transcripts {
    let path = corpus_dir().join("transcripts.toml");
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/spoken/transcripts.toml");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Each voice with what it was heard as.
fn voices(transcripts: &Transcripts) -> Vec<(&str, Voice<'_>)> {
    let lines = &transcripts.lines;
    transcripts
        .voices
        .keys()
        .map(|name| {
            let heard = lines.iter().filter_map(|l| Some((l.said.as_str(), l.heard.get(name)?.as_str()))).collect();
            let unsure = lines.iter().filter_map(|l| Some((l.said.as_str(), l.unsure.get(name)?.as_slice()))).collect();
            (name.as_str(), Voice { heard, unsure })
        })
        .collect()
}

/// Every line a caller of the corpus may say: the script, its retries, and the refusal of a wrong read-back.
pub(crate) fn caller_lines(fixtures: &[Fixture]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let said = fixtures.iter().flat_map(|f| f.turns.iter().flat_map(|t| [Some(t.caller.clone()), t.retry.clone()]));
    let repairs = fixtures.iter().filter_map(|f| f.repair.as_ref()).flat_map(|r| [r.name.clone(), r.email.clone()]);
    let fixed = [REFUSE, LEAVE, THE_NAME, THE_EMAIL].map(str::to_string);
    for line in said.chain(repairs).flatten().chain(fixed) {
        if !line.trim().is_empty() && !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// Given the spoken corpus, when every dialog is played as written and as each voice was heard, then as
/// written every phrase holds, and heard no dialog ends with a wrong booking, every one that does not end
/// as asked ends with an honest last word, and at least [`FLOOR_PERCENT`] end as asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spoken_corpus_ends_as_callers_asked() {
    let paths = dialog_paths();
    let fixtures: Vec<Fixture> =
        paths.iter().map(|p| dialogs::load(p).unwrap_or_else(|e| panic!("{p:?}: {e}"))).collect();
    let only = std::env::var("SPOKEN").ok();
    let transcripts = transcripts();
    let lines = caller_lines(&fixtures);
    let turns: usize = fixtures.iter().map(|f| f.turns.len()).sum();
    if only.is_none() {
        assert!(fixtures.len() >= 40, "at least 40 dialogs, found {}", fixtures.len());
        assert!(turns >= 150, "at least 150 caller turns, found {turns}");
        assert!(transcripts.voices.len() >= 3, "at least three voices: {:?}", transcripts.voices.keys());
    }
    let voices = voices(&transcripts);
    let unrendered: Vec<&String> =
        lines.iter().filter(|l| voices.iter().any(|(_, v)| !v.heard.contains_key(l.as_str()))).collect();
    assert!(
        unrendered.is_empty(),
        "caller lines without transcripts (run `cargo run --example spoken_corpus`): {unrendered:#?}"
    );

    let mut failures = Vec::new();
    let mut table: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut details = Vec::new();
    for (path, fixture) in paths.iter().zip(&fixtures) {
        if only.as_ref().is_some_and(|o| !path.to_string_lossy().contains(o.as_str())) {
            continue;
        }
        let category = fixture.category.clone().unwrap_or_else(|| "uncategorised".into());
        let written = dialogs::play(fixture, path, None).await.expect("plays");
        if let Some(why) = &written.failure {
            failures.push(format!("{} as written: {why}\n{}", path.display(), written.transcript));
        }
        for (name, voice) in &voices {
            let played = dialogs::play(fixture, path, Some(voice)).await.expect("plays");
            table.entry((category.clone(), (*name).to_string())).or_default().add(&played);
            if only.is_some() || played.failure.is_some() {
                details.push(format!("[{name}] {}", played.transcript));
            }
            if !played.wrong.is_empty() || (played.failure.is_some() && !played.honest) {
                failures.push(format!(
                    "[{name}] wrong {:?}, honest {}:\n{}",
                    played.wrong, played.honest, played.transcript
                ));
            }
        }
    }
    let report = report(&table, &voices.iter().map(|(n, _)| *n).collect::<Vec<_>>(), fixtures.len(), turns);
    println!("{report}");
    if std::env::var_os("SPOKEN_DETAILS").is_some() || only.is_some() {
        println!("{}", details.join("\n"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let sum = |voices: &[&str]| {
        let cells = table.iter().filter(|((_, voice), _)| voices.is_empty() || voices.contains(&voice.as_str()));
        Tally::total(cells.map(|(_, c)| c))
    };
    if only.is_none() {
        let (total, neural) = (sum(&[]), sum(&NEURAL_VOICES));
        assert!(
            neural.percent() >= NEURAL_FLOOR_PERCENT,
            "{:.1} % of the neural voices' dialogs ended as asked:\n{report}",
            neural.percent()
        );
        // whisper tiny.en hears four in five of espeak-ng's lines otherwise than written
        // (docs/conversation.md), so over all voices this holds the measured level against regressions.
        assert!(
            total.percent() >= FLOOR_PERCENT,
            "{:.1} % of heard dialogs ended as asked:\n{report}",
            total.percent()
        );
    }
}

/// The voices closest to a person on the phone, and the share of their dialogs that end as asked today
/// (134 of 138, 97.1 %, with the spell request for a surname whisper was unsure of): a regression floor above the goal of 95 %.
const NEURAL_VOICES: [&str; 3] = ["hibari", "hibari-fast", "piper-fast"];
const NEURAL_FLOOR_PERCENT: f64 = 96.0;

/// The share of heard dialogs over all voices that end as asked today (147 of 230, 63.9 %): a regression floor.
const FLOOR_PERCENT: f64 = 63.0;

/// The table: categories down, voices across, then the totals.
fn report(table: &BTreeMap<(String, String), Tally>, voices: &[&str], dialogs: usize, turns: usize) -> String {
    let categories: Vec<&String> = {
        let mut c: Vec<&String> = table.keys().map(|(c, _)| c).collect();
        c.dedup();
        c
    };
    let mut out = format!("spoken corpus: {dialogs} dialogs, {turns} caller turns, {} voices\n\n", voices.len());
    out.push_str(&format!("| category | {} | all voices |\n", voices.join(" | ")));
    out.push_str(&format!("| --- |{} --- |\n", " --- |".repeat(voices.len())));
    let mut by_voice: BTreeMap<&str, Tally> = BTreeMap::new();
    let (mut wrong, mut dishonest) = (0, 0);
    for category in categories {
        let mut row = Tally::default();
        let mut cells = Vec::new();
        for voice in voices {
            let cell = table.get(&(category.clone(), (*voice).to_string())).copied().unwrap_or_default();
            cells.push(cell.cell());
            for t in [&mut row, by_voice.entry(voice).or_default()] {
                t.dialogs += cell.dialogs;
                t.as_asked += cell.as_asked;
            }
            wrong += cell.wrong;
            dishonest += cell.dishonest;
        }
        out.push_str(&format!("| {category} | {} | {} |\n", cells.join(" | "), row.cell()));
    }
    let all = Tally::total(by_voice.values());
    let totals: Vec<String> = voices.iter().map(|v| by_voice.get(v).copied().unwrap_or_default().cell()).collect();
    out.push_str(&format!("| **all** | {} | **{}** |\n", totals.join(" | "), all.cell()));
    let neural = Tally::total(NEURAL_VOICES.iter().filter_map(|v| by_voice.get(v)));
    out.push_str(&format!("\nneural voices ({}): {}\n", NEURAL_VOICES.join(", "), neural.cell()));
    out.push_str(&format!(
        "wrong bookings: {wrong}; dialogs ended otherwise without an honest last word: {dishonest}\n"
    ));
    out
}
