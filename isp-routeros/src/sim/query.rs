//! `print` queries: words after `?`, evaluated on a stack of booleans.
//!
//! The stack starts as "infinitely many `true`"; an item matches when no `false` remains.
//! `?name` pushes whether the property is present, `?-name` whether it is absent,
//! `?name=x` / `?=name=x` equality, `?<name=x` / `?>name=x` ordering, and `?#ops` applies
//! operations: `!` negates the top, `&` / `|` pop two and push the result, an index `N` followed
//! by another character pushes a copy of the value `N` places below the top (0 = top), an index
//! at the end of the word replaces the whole stack with that value, `.` after an index does
//! nothing and after anything else pushes a copy of the top.

use std::cmp::Ordering;

/// One parsed query word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query {
    Has(String),
    Lacks(String),
    Eq(String, String),
    Lt(String, String),
    Gt(String, String),
    Ops(Vec<Op>),
}

/// One step of a `?#` word, parsed once per query rather than once per item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Push a copy of the value this many places below the top.
    Index(usize),
    /// An index ending the word: the stack becomes that one value.
    IndexLast(usize),
    Not,
    And,
    Or,
    /// `.` after anything but an index: push a copy of the top.
    Dup,
}

fn parse_ops(ops: &str) -> Result<Vec<Op>, String> {
    let chars: Vec<char> = ops.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut after_index = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let n: usize = chars[start..i]
                .iter()
                .collect::<String>()
                .parse()
                .unwrap_or(usize::MAX);
            out.push(if i == chars.len() {
                Op::IndexLast(n)
            } else {
                Op::Index(n)
            });
            after_index = true;
            continue;
        }
        match c {
            '!' => out.push(Op::Not),
            '&' => out.push(Op::And),
            '|' => out.push(Op::Or),
            '.' if after_index => {}
            '.' => out.push(Op::Dup),
            _ => return Err(format!("invalid query operations ?#{ops}")),
        }
        after_index = false;
        i += 1;
    }
    Ok(out)
}

impl Query {
    /// Parses the text after `?`. Errors name the bad word.
    pub(crate) fn parse(q: &str) -> Result<Query, String> {
        if let Some(ops) = q.strip_prefix('#') {
            return parse_ops(ops).map(Query::Ops);
        }
        if let Some(name) = q.strip_prefix('-') {
            return Ok(Query::Lacks(name.to_owned()));
        }
        let split = |s: &str| match s.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => (s.to_owned(), String::new()),
        };
        if let Some(rest) = q.strip_prefix('<') {
            let (n, v) = split(rest);
            return Ok(Query::Lt(n, v));
        }
        if let Some(rest) = q.strip_prefix('>') {
            let (n, v) = split(rest);
            return Ok(Query::Gt(n, v));
        }
        let body = q.strip_prefix('=').unwrap_or(q);
        match body.split_once('=') {
            Some((n, v)) => Ok(Query::Eq(n.to_owned(), v.to_owned())),
            None if q.starts_with('=') => Ok(Query::Eq(body.to_owned(), String::new())),
            None => Ok(Query::Has(body.to_owned())),
        }
    }
}

/// The form under which an index keeps a value: items equal by [`values_equal`] have the same
/// key (booleans in one spelling, MACs in upper case).
pub(crate) fn equality_key(value: &str) -> std::borrow::Cow<'_, str> {
    match value {
        "true" | "yes" => "true".into(),
        "false" | "no" => "false".into(),
        v if is_mac(v) => v.to_ascii_uppercase().into(),
        v => v.into(),
    }
}

fn is_mac(s: &str) -> bool {
    s.len() == 17 && s.split(':').all(|p| p.len() == 2)
}

/// Ids from an index that may satisfy a query word.
pub(crate) type IdSet = std::collections::BTreeSet<u64>;

/// The items that can match the queries, narrowed by an index: `lookup(name, value)` gives every
/// item whose `name` may equal `value` (more is fine), or `None` when it cannot tell. Runs the
/// query stack on sets instead of booleans; `None` (the result too) means any item may match.
/// The items returned still go through [`matches`].
pub(crate) fn candidates(queries: &[Query], lookup: &dyn Fn(&str, &str) -> Option<IdSet>) -> Option<IdSet> {
    let mut stack: Vec<Option<IdSet>> = Vec::new();
    let pop = |stack: &mut Vec<Option<IdSet>>| stack.pop().unwrap_or(None);
    for q in queries {
        match q {
            Query::Eq(n, v) => stack.push(lookup(n, v)),
            Query::Has(_) | Query::Lacks(_) | Query::Lt(..) | Query::Gt(..) => stack.push(None),
            Query::Ops(ops) => {
                for op in ops {
                    match *op {
                        Op::Index(n) | Op::IndexLast(n) => {
                            let value = stack
                                .len()
                                .checked_sub(1)
                                .and_then(|top| top.checked_sub(n))
                                .and_then(|idx| stack[idx].clone());
                            if matches!(op, Op::IndexLast(_)) {
                                stack.clear();
                            }
                            stack.push(value);
                        }
                        Op::Not => {
                            pop(&mut stack);
                            stack.push(None);
                        }
                        Op::And => {
                            let both = match (pop(&mut stack), pop(&mut stack)) {
                                (Some(a), Some(b)) => Some(a.intersection(&b).copied().collect()),
                                (Some(a), None) | (None, Some(a)) => Some(a),
                                (None, None) => None,
                            };
                            stack.push(both);
                        }
                        Op::Or => {
                            let either = match (pop(&mut stack), pop(&mut stack)) {
                                (Some(mut a), Some(b)) => {
                                    a.extend(b);
                                    Some(a)
                                }
                                _ => None,
                            };
                            stack.push(either);
                        }
                        Op::Dup => {
                            let top = stack.last().cloned().unwrap_or(None);
                            stack.push(top);
                        }
                    }
                }
            }
        }
    }
    stack
        .into_iter()
        .flatten()
        .reduce(|a, b| a.intersection(&b).copied().collect())
}

/// Typed equality as a router does it: booleans in either spelling, MACs in any case.
fn values_equal(item: &str, wanted: &str) -> bool {
    if item == wanted {
        return true;
    }
    let as_bool = |s: &str| match s {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    };
    if let (Some(a), Some(b)) = (as_bool(item), as_bool(wanted)) {
        return a == b;
    }
    item.eq_ignore_ascii_case(wanted) && is_mac(item) && is_mac(wanted)
}

fn compare(item: &str, wanted: &str) -> Ordering {
    if let (Ok(a), Ok(b)) = (item.parse::<i128>(), wanted.parse::<i128>()) {
        return a.cmp(&b);
    }
    let id = |s: &str| s.strip_prefix('*').and_then(|h| u64::from_str_radix(h, 16).ok());
    if let (Some(a), Some(b)) = (id(item), id(wanted)) {
        return a.cmp(&b);
    }
    if let (Some(a), Some(b)) = (super::duration::parse(item), super::duration::parse(wanted)) {
        return a.cmp(&b);
    }
    item.cmp(wanted)
}

/// The property names the queries read, each once.
pub(crate) fn names(queries: &[Query]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for q in queries {
        let name = match q {
            Query::Has(n) | Query::Lacks(n) | Query::Eq(n, _) | Query::Lt(n, _) | Query::Gt(n, _) => n,
            Query::Ops(_) => continue,
        };
        if !out.contains(&name.as_str()) {
            out.push(name);
        }
    }
    out
}

/// Whether an item (its printed properties) matches the queries; `get`
/// borrows a property's value, so that a long OR of terms costs no copies.
pub(crate) fn matches<'v>(queries: &[Query], get: &dyn Fn(&str) -> Option<&'v str>) -> bool {
    // `stack` holds the explicit values; below them are infinitely many `true`.
    let mut stack: Vec<bool> = Vec::new();
    let pop = |stack: &mut Vec<bool>| stack.pop().unwrap_or(true);
    for q in queries {
        match q {
            Query::Has(n) => stack.push(get(n).is_some()),
            Query::Lacks(n) => stack.push(get(n).is_none()),
            Query::Eq(n, v) => stack.push(get(n).is_some_and(|x| values_equal(x, v))),
            Query::Lt(n, v) => stack.push(get(n).is_some_and(|x| compare(x, v) == Ordering::Less)),
            Query::Gt(n, v) => stack.push(get(n).is_some_and(|x| compare(x, v) == Ordering::Greater)),
            Query::Ops(ops) => {
                for op in ops {
                    match *op {
                        Op::Index(n) | Op::IndexLast(n) => {
                            let value = stack
                                .len()
                                .checked_sub(1)
                                .and_then(|top| top.checked_sub(n))
                                .is_none_or(|idx| stack[idx]);
                            if matches!(op, Op::IndexLast(_)) {
                                stack.clear();
                            }
                            stack.push(value);
                        }
                        Op::Not => {
                            let v = pop(&mut stack);
                            stack.push(!v);
                        }
                        Op::And => {
                            let (a, b) = (pop(&mut stack), pop(&mut stack));
                            stack.push(a && b);
                        }
                        Op::Or => {
                            let (a, b) = (pop(&mut stack), pop(&mut stack));
                            stack.push(a || b);
                        }
                        Op::Dup => {
                            let top = stack.last().copied().unwrap_or(true);
                            stack.push(top);
                        }
                    }
                }
            }
        }
    }
    stack.iter().all(|&b| b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn m(r: &BTreeMap<String, String>, qs: &[&str]) -> bool {
        let parsed: Vec<Query> = qs.iter().map(|q| Query::parse(q).unwrap()).collect();
        matches(&parsed, &|n| r.get(n).map(String::as_str))
    }

    #[test]
    fn simple_words() {
        let r = row(&[
            ("type", "ether"),
            ("mtu", "1500"),
            ("disabled", "false"),
            (".id", "*1A"),
        ]);
        assert!(m(&r, &[]));
        assert!(m(&r, &["type"]));
        assert!(!m(&r, &["name"]));
        assert!(m(&r, &["-name"]));
        assert!(m(&r, &["type=ether"]));
        assert!(m(&r, &["=type=ether"]));
        assert!(!m(&r, &["type=vlan"]));
        assert!(m(&r, &["<mtu=9000"]));
        assert!(m(&r, &[">mtu=100"]));
        assert!(!m(&r, &[">mtu=1500"]));
        assert!(m(&r, &["disabled=no"]));
        assert!(m(&r, &[">.id=*9"]));
    }

    #[test]
    fn stack_operations() {
        let ether = row(&[("type", "ether")]);
        let vlan = row(&[("type", "vlan")]);
        let wifi = row(&[("type", "wlan")]);
        let or = ["type=ether", "type=vlan", "#|"];
        assert!(m(&ether, &or));
        assert!(m(&vlan, &or));
        assert!(!m(&wifi, &or));
        let nor = ["type=ether", "type=vlan", "#|!"];
        assert!(m(&wifi, &nor));
        assert!(!m(&ether, &nor));
        // without operations every value must be true: ether AND vlan is impossible
        assert!(!m(&ether, &["type=ether", "type=vlan"]));
        // index at the end replaces the stack with that value: 1 = the value below the top
        assert!(m(&ether, &["type=ether", "type=vlan", "#1"]));
        assert!(!m(&vlan, &["type=ether", "type=vlan", "#1"]));
        // `.` duplicates the top, `&` of two copies keeps it
        assert!(m(&ether, &["type=ether", "#.&"]));
        assert!(!m(&vlan, &["type=ether", "#.&"]));
        // `.` right after an index is a separator, not a copy: `#0.|` ORs the top with itself
        assert!(m(&ether, &["type=ether", "#0.|"]));
        assert!(!m(&vlan, &["type=ether", "#0.|"]));
    }

    #[test]
    fn operations_are_parsed_once_and_bad_ones_named() {
        assert_eq!(
            Query::parse("#12|!0.&3"),
            Ok(Query::Ops(vec![
                Op::Index(12),
                Op::Or,
                Op::Not,
                Op::Index(0),
                Op::And,
                Op::IndexLast(3)
            ]))
        );
        assert_eq!(Query::parse("#.!"), Ok(Query::Ops(vec![Op::Dup, Op::Not])));
        let err = Query::parse("#|x").unwrap_err();
        assert!(err.contains("?#|x"), "{err}");
    }

    proptest::proptest! {
        /// Narrowing by an index never loses an item the queries match.
        #[test]
        fn candidates_keep_every_match(
            items in proptest::collection::vec(
                (proptest::sample::select(vec!["a", "b", "yes", "no", "aa:bb:cc:dd:ee:0f", "AA:BB:CC:DD:EE:0F"]),
                 proptest::sample::select(vec!["x", "y", "true", "false"])),
                0..12,
            ),
            words in proptest::collection::vec(
                proptest::sample::select(vec![
                    "name=a", "name=b", "name=true", "name=no", "name=aa:bb:cc:dd:ee:0F", "user=x",
                    "user=yes", "name", "-user", ">name=a", "#|", "#&", "#!", "#.", "#0", "#1|", "#2", "#!|",
                ]),
                0..8,
            ),
        ) {
            let rows: Vec<BTreeMap<String, String>> =
                items.iter().map(|(n, u)| row(&[("name", n), ("user", u)])).collect();
            let parsed: Vec<Query> = words.iter().map(|q| Query::parse(q).unwrap()).collect();
            let lookup = |field: &str, value: &str| -> Option<IdSet> {
                let key = equality_key(value);
                Some(
                    rows.iter()
                        .zip(0u64..)
                        .filter(|(r, _)| r.get(field).is_some_and(|v| equality_key(v) == key))
                        .map(|(_, id)| id)
                        .collect(),
                )
            };
            let narrowed = candidates(&parsed, &lookup);
            for (r, id) in rows.iter().zip(0u64..) {
                if matches(&parsed, &|n| r.get(n).map(String::as_str)) {
                    proptest::prop_assert!(narrowed.as_ref().is_none_or(|c| c.contains(&id)), "{words:?} lost {r:?}");
                }
            }
        }
    }
}
