//! `ISP_TEST_SKIP`: the explicit, visible opt-out for tests that need a server.
//!
//! Without it, a test that needs PostgreSQL, MongoDB, MariaDB, FreeRADIUS's tools or a browser
//! fails when they cannot be had. With `ISP_TEST_SKIP=postgres`, `mongo`, `mariadb`, `radius`,
//! `browser` or a comma list of them, those tests
//! return early and each writes one line to stderr that libtest does not hide.

use std::io::Write as _;

/// The variable that names the suites to skip.
pub const VAR: &str = "ISP_TEST_SKIP";

/// A suite of tests that needs a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// Tests that need PostgreSQL.
    Postgres,
    /// Tests that need a MongoDB-protocol server.
    Mongo,
    /// Tests that need MariaDB (or MySQL).
    Mariadb,
    /// Tests that need FreeRADIUS's tools (`radclient`, `radtest`).
    Radius,
    /// Tests that drive headless Chromium.
    Browser,
}

impl Suite {
    /// The word `ISP_TEST_SKIP` lists it by.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Postgres => "postgres",
            Suite::Mongo => "mongo",
            Suite::Mariadb => "mariadb",
            Suite::Radius => "radius",
            Suite::Browser => "browser",
        }
    }
}

/// The suites named by `raw` (an `ISP_TEST_SKIP` value); an unknown word is an
/// error naming the variable and the word.
pub fn parse(raw: &str) -> Result<Vec<Suite>, String> {
    let mut suites = Vec::new();
    for word in raw.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let suite = match word.to_ascii_lowercase().as_str() {
            "postgres" => Suite::Postgres,
            "mongo" => Suite::Mongo,
            "mariadb" => Suite::Mariadb,
            "radius" => Suite::Radius,
            "browser" => Suite::Browser,
            _ => {
                return Err(format!(
                    "invalid {VAR}: {word:?} (expected a comma list of postgres, mongo, mariadb, radius, browser)"
                ))
            }
        };
        if !suites.contains(&suite) {
            suites.push(suite);
        }
    }
    Ok(suites)
}

/// True when the runner opted out of `suite` with `ISP_TEST_SKIP`.
///
/// # Panics
///
/// When `ISP_TEST_SKIP` names something other than `postgres`, `mongo`, `mariadb`, `radius` or
/// `browser`: a typo must not turn into a run that quietly requires (or skips) a server.
pub fn skipped(suite: Suite) -> bool {
    match std::env::var(VAR) {
        Ok(raw) => match parse(&raw) {
            Ok(suites) => suites.contains(&suite),
            Err(e) => panic!("{e}"),
        },
        Err(_) => false,
    }
}

/// Writes `SKIPPED: <test> needs <suite> (ISP_TEST_SKIP)` to stderr, past libtest's
/// capture. The test is the current thread's name (libtest names it after the test).
pub fn announce(suite: Suite) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    say(&format!("SKIPPED: {test} needs {} ({VAR})", suite.name()));
}

/// Returns (after [`announce`]) when the runner opted out of `suite`; otherwise fails
/// the test with `reason` and how to opt out.
pub fn skip_or_fail(suite: Suite, reason: &str) {
    if skipped(suite) {
        announce(suite);
        return;
    }
    fail(suite, reason);
}

/// Fails the test: `suite` is needed and unavailable for `reason`; says how to opt out.
pub fn fail(suite: Suite, reason: &str) -> ! {
    panic!(
        "{} is required by this test but unavailable: {reason}\n\
         (set {VAR}={} to skip the tests that need it)",
        suite.name(),
        suite.name()
    );
}

/// One line on the process's stderr. `eprintln!` would be captured by libtest for a
/// passing test; a write to the `Stderr` handle is not.
pub fn say(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_comma_list() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("postgres").unwrap(), vec![Suite::Postgres]);
        assert_eq!(parse("radius").unwrap(), vec![Suite::Radius]);
        assert_eq!(
            parse(" mongo , POSTGRES,mongo").unwrap(),
            vec![Suite::Mongo, Suite::Postgres]
        );
        assert_eq!(parse("mariadb").unwrap(), vec![Suite::Mariadb]);
        assert_eq!(
            parse("browser,mongo").unwrap(),
            vec![Suite::Browser, Suite::Mongo]
        );
    }

    #[test]
    fn an_unknown_word_names_the_variable_and_the_word() {
        let e = parse("postgres,mysql").unwrap_err();
        assert!(e.contains(VAR) && e.contains("mysql"), "{e}");
    }
}
