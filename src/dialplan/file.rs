//! The dialplan file format (TOML). See `dialplans/example.toml` for a commented example.
//!
//! ```toml
//! [[route]]
//! number = "+1 (555) 010-0000"   # exact number, any common notation, stored as E.164
//! agent = "Demo Agent"           # the agent's unique name
//!
//! [[route]]
//! number = "+1555020*"           # prefix: numbers starting +1555020 without an exact route
//! agent = "Front desk"
//! ```
//!
//! Parsing collects every problem with its line and column instead of stopping at the first.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::phone::{self, E164};

/// A parsed, normalised dialplan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialplan {
    /// Routes in file order.
    pub routes: Vec<Route>,
}

/// One number or prefix → agent mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// What dialed numbers it matches.
    pub pattern: Pattern,
    /// The agent's name.
    pub agent: String,
    /// 1-based line of the `agent` value (for errors found later, e.g. an unknown agent).
    pub agent_line: usize,
    /// 1-based column of the `agent` value.
    pub agent_column: usize,
}

/// How a route matches the dialed number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this number.
    Exact(E164),
    /// Any number starting with this (`+` and digits).
    Prefix(String),
}

/// A problem at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialplanError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DialplanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    number: Spanned<String>,
    agent: Spanned<String>,
}

/// Parses and validates a dialplan; on failure returns every error found, in file order.
pub fn parse(text: &str) -> Result<Dialplan, Vec<DialplanError>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| position(text, s.start)).unwrap_or((1, 1));
        vec![DialplanError { line, column, message: e.message().to_string() }]
    })?;
    let mut errors = Vec::new();
    let mut routes = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for entry in raw.route {
        let (line, column) = position(text, entry.number.span().start);
        let written = entry.number.get_ref();
        let pattern = if written.trim_end().ends_with('*') {
            phone::normalize_prefix(written).map(Pattern::Prefix)
        } else {
            phone::normalize(written).map(Pattern::Exact)
        };
        let agent = entry.agent.get_ref().trim().to_string();
        let (agent_line, agent_column) = position(text, entry.agent.span().start);
        if agent.is_empty() {
            errors.push(DialplanError {
                line: agent_line,
                column: agent_column,
                message: "agent must not be empty".into(),
            });
        }
        match pattern {
            Err(e) => errors.push(DialplanError { line, column, message: format!("number `{written}`: {e}") }),
            Ok(pattern) => {
                let key = match &pattern {
                    Pattern::Exact(n) => n.to_string(),
                    Pattern::Prefix(p) => format!("{p}*"),
                };
                if let Some(first) = seen.insert(key.clone(), line) {
                    errors.push(DialplanError {
                        line,
                        column,
                        message: format!("number `{key}` is already routed on line {first}"),
                    });
                }
                routes.push(Route { pattern, agent, agent_line, agent_column });
            }
        }
    }
    if errors.is_empty() {
        Ok(Dialplan { routes })
    } else {
        Err(errors)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_and_prefix_routes() {
        let plan = parse("[[route]]\nnumber = \"+1 (555) 010-0000\"\nagent = \"Demo\"\n\n[[route]]\nnumber = \"+1555020*\"\nagent = \"Desk\"\n")
            .expect("valid");
        assert_eq!(plan.routes.len(), 2);
        assert_eq!(plan.routes[0].pattern, Pattern::Exact("+15550100000".parse().expect("e164")));
        assert_eq!(plan.routes[1].pattern, Pattern::Prefix("+1555020".into()));
        assert_eq!((plan.routes[1].agent_line, plan.routes[1].agent_column), (7, 9));
    }

    #[test]
    fn reports_every_error_with_its_line() {
        let text = "[[route]]\nnumber = \"garbage\"\nagent = \"A\"\n[[route]]\nnumber = \"+15550100000\"\nagent = \"\"\n[[route]]\nnumber = \"+1 555 010 0000\"\nagent = \"B\"\n";
        let errors = parse(text).expect_err("invalid");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 6, 8], "{errors:?}");
        assert!(errors[2].message.contains("already routed on line 5"));
    }

    #[test]
    fn syntax_errors_and_unknown_keys_have_positions() {
        let errors = parse("[[route]]\nnumber = \"+15550100000\"\nagnet = \"A\"\n").expect_err("typo");
        assert_eq!((errors[0].line, errors[0].column), (3, 1), "{errors:?}");
        let errors = parse("[[route]]\nnumber = \"+15550100000\n").expect_err("unterminated");
        assert_eq!(errors[0].line, 2, "{errors:?}");
    }
}
