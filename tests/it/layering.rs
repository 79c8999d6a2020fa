//! Dependencies follow the call path, one way: the ways in (`sip`, `livekit`) → `media` → `agent` →
//! `speech` / `calendar` → `storage`, with plain values (`phone`, `audio`) that import nothing of the crate
//! and that every layer may use. The process (`app`, `cli`) and the admin side (`api`, `console`) sit on
//! top and may use everything.
//!
//! This test reads the source of the lower layers and fails, naming file and line, when one of them
//! imports (`use crate::x` or a `crate::x::` path, grouped `crate::{x, y}` included) a module of a layer
//! above it or a way in. `super::` paths stay inside a layer and are not read.

use std::path::{Path, PathBuf};

/// Every module of the crate is forbidden except the layer's own.
const ANYTHING: &str = "*";

/// A layer: its sources under `src/` (files or folders) and the modules it may not import.
struct Layer {
    /// The module the layer is (a value layer may import itself).
    name: &'static str,
    sources: &'static [&'static str],
    may_not_import: &'static [&'static str],
}

const LAYERS: &[Layer] = &[
    Layer {
        name: "media",
        sources: &["media"],
        may_not_import: &["sip", "livekit", "storage", "api", "app", "cli", "console"],
    },
    Layer {
        name: "agent",
        sources: &["agent"],
        may_not_import: &["sip", "livekit", "media::rtp", "api", "app", "cli", "console"],
    },
    Layer {
        name: "speech",
        sources: &["speech"],
        may_not_import: &["sip", "livekit", "media", "agent", "api", "app", "calendar"],
    },
    Layer {
        name: "calendar",
        sources: &["calendar"],
        may_not_import: &["sip", "livekit", "media", "agent", "speech", "api", "app"],
    },
    Layer {
        name: "storage",
        sources: &["storage"],
        may_not_import: &["sip", "livekit", "media", "agent", "speech", "calendar", "api", "app", "config", "dialplan"],
    },
    Layer { name: "phone", sources: &["phone.rs"], may_not_import: &[ANYTHING] },
    Layer { name: "audio", sources: &["audio"], may_not_import: &[ANYTHING] },
];

/// Imports that break the direction and are tolerated for now: (file under `src/`, imported path, why).
/// Keep it empty; an entry is a debt with its reason.
const ALLOWED: &[(&str, &str, &str)] = &[];

#[test]
fn lower_layers_import_nothing_above_them() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for layer in LAYERS {
        let files: Vec<PathBuf> = layer.sources.iter().flat_map(|source| rust_files(&src.join(source))).collect();
        assert!(!files.is_empty(), "no sources for layer `{}`: was it moved? update LAYERS", layer.name);
        for file in files {
            let relative = file.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&file).expect("readable source");
            for (line, path) in crate_paths(&text) {
                let allowed = ALLOWED.iter().any(|(f, p, _)| *f == relative && *p == path);
                if forbids(layer, &path) && !allowed {
                    violations.push(format!("src/{relative}:{line}: `{}` imports `crate::{path}`", layer.name));
                }
            }
        }
    }
    assert!(violations.is_empty(), "imports against the call path's direction:\n{}", violations.join("\n"));
}

#[test]
fn every_allowed_import_is_still_there() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    for (file, path, why) in ALLOWED {
        let text = std::fs::read_to_string(src.join(file)).expect("allowed file exists");
        assert!(
            crate_paths(&text).iter().any(|(_, p)| p == path),
            "src/{file} no longer imports {path} ({why}): drop it from ALLOWED"
        );
    }
}

#[test]
fn the_reader_finds_plain_grouped_and_nested_paths_but_not_comments() {
    let text = "use crate::sip::server;\n\
                use crate::{call::Frame, media::{rtp, g711}};\n\
                // crate::livekit in a comment\n\
                let x = crate::api::thing(); // crate::app\n\
                use some_crate::cli;\n";
    let found: Vec<(usize, String)> = crate_paths(text);
    let expected = [(1, "sip::server"), (2, "call::Frame"), (2, "media::rtp"), (2, "media::g711"), (4, "api::thing")];
    assert_eq!(found, expected.map(|(line, path)| (line, path.to_string())));
    let agent = LAYERS.iter().find(|l| l.name == "agent").expect("agent layer");
    assert!(forbids(agent, "media::rtp::Packet") && !forbids(agent, "media::g711") && !forbids(agent, "sipx"));
    let phone = LAYERS.iter().find(|l| l.name == "phone").expect("phone layer");
    assert!(forbids(phone, "config::Config") && !forbids(phone, "phone::E164"));
}

/// Whether `layer` may not import `path` (`media::rtp::Packet`).
fn forbids(layer: &Layer, path: &str) -> bool {
    let first = path.split("::").next().unwrap_or(path);
    layer.may_not_import.iter().any(|rule| match *rule {
        ANYTHING => first != layer.name,
        rule => path == rule || path.starts_with(&format!("{rule}::")),
    })
}

/// The `.rs` files at `path` (a file, or a folder walked recursively), sorted.
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every `crate::` path in `text` with its line (1-based), comments left out: `sip::server` for
/// `use crate::sip::server;`, and one path per item of a group (`crate::{call, media::{rtp, g711}}`).
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let code: Vec<&str> = text.lines().map(|line| line.split("//").next().unwrap_or("")).collect();
    let code = code.join("\n");
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let inside_a_name = code[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        if inside_a_name {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let mut paths = Vec::new();
        expand("", &code[at + "crate::".len()..], &mut paths);
        found.extend(paths.into_iter().map(|path| (line, path)));
    }
    found
}

/// Pushes the path that starts `text` (after `prefix`), or each path of the group that it opens.
fn expand(prefix: &str, text: &str, out: &mut Vec<String>) {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(text.len());
    let head = text[..end].trim_end_matches(':');
    let path = match (prefix.is_empty(), head.is_empty()) {
        (true, _) => head.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}::{head}"),
    };
    match text[end..].strip_prefix('{') {
        Some(group) => group_items(group).into_iter().for_each(|item| expand(&path, item.trim(), out)),
        None if !path.is_empty() => out.push(path),
        None => {}
    }
}

/// The top-level items of a `{ ... }` group, `group` starting after its `{`.
fn group_items(group: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter().filter(|item| !item.trim().is_empty()).collect()
}
