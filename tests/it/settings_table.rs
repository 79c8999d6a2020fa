//! The settings table of `docs/configuration.md` is the configuration: every setting slotline reads is a
//! row, every row is a setting, and each row's environment variable is the one `Config::load` reads for it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use slotline::config::Config;

/// Dotted names of every leaf of `value` (objects are walked; anything else, `null` included, is a leaf).
fn leaves(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                leaves(&name, inner, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// The settings rows of `docs/configuration.md`: (setting, environment variable or `(file only)`).
fn table_rows() -> Vec<(String, String)> {
    let page = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let table = std::fs::read_to_string(page).expect("docs/configuration.md");
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (setting, env) = (cells.get(1)?, cells.get(2)?);
            let unquote = |cell: &str| cell.strip_prefix('`')?.strip_suffix('`').map(str::to_string);
            // Lists are set in the file only.
            let env = if *env == "(file only)" {
                env.to_string()
            } else {
                unquote(env).filter(|e| e.starts_with("SLOTLINE_"))?
            };
            Some((unquote(setting)?, env))
        })
        .collect()
}

#[test]
fn the_settings_table_is_the_configuration() {
    let mut settings = BTreeSet::new();
    leaves("", &serde_json::to_value(Config::default()).expect("the configuration serialises"), &mut settings);
    let rows = table_rows();
    let documented: BTreeSet<String> = rows.iter().map(|(setting, _)| setting.clone()).collect();
    let undocumented: Vec<_> = settings.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&settings).collect();
    assert!(undocumented.is_empty(), "settings missing from the table in docs/configuration.md: {undocumented:?}");
    assert!(unknown.is_empty(), "docs/configuration.md lists settings slotline does not have: {unknown:?}");
    for (setting, env) in rows.iter().filter(|(_, env)| env != "(file only)") {
        let expected = format!("SLOTLINE_{}", setting.to_uppercase().replace('.', "__"));
        assert_eq!(env, &expected, "the environment variable of `{setting}`");
    }
    assert!(rows.len() > 50, "the table was found: {} rows", rows.len());
}
