//! TOML text → [`Config`], pure: syntax errors, unknown keys and wrong types
//! (including a value outside a closed set, refused by its serde enum) are
//! all collected, each with its dotted key and line, and the line of every
//! key is kept for the rules that follow.

use super::Problem;
use super::schema::Config;
use std::collections::BTreeMap;

/// Dotted key (`api.tokens[0].role`) → line.
pub type Lines = BTreeMap<String, usize>;

/// Parse `text` into the schema. `None` when nothing further can be judged
/// (a syntax error); otherwise the problems found so far are pushed and the
/// config holds defaults in place of the refused values.
pub fn parse(text: &str, problems: &mut Vec<Problem>) -> Option<(Config, Lines)> {
    let (doc, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        problems.extend(syntax.into_iter().map(|e| Problem {
            key: String::new(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: format!("TOML syntax: {}", e.message().trim()),
        }));
        return None;
    }
    let mut lines = BTreeMap::new();
    index_lines(text, "", doc.get_ref(), &mut lines);

    let mut table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem {
                key: String::new(),
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().trim().to_string(),
            });
            return None;
        }
    };
    let known = toml::Table::try_from(Config::default()).expect("defaults serialize");
    remove_unknown(&mut table, &known, "", &lines, problems);

    // Deserialize, and on each type error note it, drop that key, and go on:
    // one run lists every wrong value, not just the first.
    let start = problems.len();
    loop {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(config) => return Some((config, lines)),
            Err(err) => {
                let key = err.path().to_string();
                let message = err.inner().message().trim().to_string();
                let removed = remove_path(&mut table, &key);
                problems.push(Problem {
                    line: line_for(&lines, &key),
                    key,
                    message,
                });
                if !removed || problems.len() - start > 100 {
                    return None;
                }
            }
        }
    }
}

/// The line of a key, or of the nearest enclosing key that has one.
pub fn line_for(lines: &Lines, key: &str) -> Option<usize> {
    let mut k = key;
    loop {
        if let Some(line) = lines.get(k) {
            return Some(*line);
        }
        let cut = k.rfind(['.', '['])?;
        k = &k[..cut];
    }
}

pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn index_lines(text: &str, prefix: &str, table: &toml::de::DeTable<'_>, out: &mut Lines) {
    for (key, value) in table.iter() {
        let path = join(prefix, key.get_ref());
        out.entry(path.clone())
            .or_insert_with(|| line_of(text, key.span().start));
        index_value(text, &path, value.get_ref(), out);
    }
}

fn index_value(text: &str, path: &str, value: &toml::de::DeValue<'_>, out: &mut Lines) {
    match value {
        toml::de::DeValue::Table(inner) => index_lines(text, path, inner, out),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                out.entry(item_path.clone())
                    .or_insert_with(|| line_of(text, item.span().start));
                index_value(text, &item_path, item.get_ref(), out);
            }
        }
        _ => {}
    }
}

/// Tables whose keys are the user's own (a code → a rate), not schema keys.
pub const OPEN_TABLES: &[&str] = &["bitrix24.vat", "gateway.tax"];

fn remove_unknown(
    table: &mut toml::Table,
    known: &toml::Table,
    prefix: &str,
    lines: &Lines,
    problems: &mut Vec<Problem>,
) {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let path = join(prefix, &key);
        match (known.get(&key), table.get_mut(&key)) {
            (Some(toml::Value::Table(_)), Some(toml::Value::Table(_)))
                if OPEN_TABLES.contains(&path.as_str()) => {}
            (Some(toml::Value::Table(k)), Some(toml::Value::Table(t))) => {
                remove_unknown(t, k, &path, lines, problems);
            }
            (Some(_), _) => {}
            (None, _) => {
                let expected: Vec<&str> = known.keys().map(String::as_str).collect();
                let scope = if prefix.is_empty() {
                    "sections are".to_string()
                } else {
                    format!("keys in [{prefix}] are")
                };
                problems.push(Problem {
                    line: lines.get(&path).copied(),
                    key: path,
                    message: format!("unknown key; the {scope}: {}", expected.join(", ")),
                });
                table.remove(&key);
            }
        }
    }
}

/// Remove `a.b[2].c` from the table; false when there is no such key.
fn remove_path(table: &mut toml::Table, dotted: &str) -> bool {
    let mut segments: Vec<Segment> = Vec::new();
    for part in dotted.split('.') {
        let mut rest = part;
        let name_end = rest.find('[').unwrap_or(rest.len());
        if name_end > 0 {
            segments.push(Segment::Key(rest[..name_end].to_string()));
        }
        rest = &rest[name_end..];
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = inner.find(']') else {
                return false;
            };
            let Ok(i) = inner[..close].parse::<usize>() else {
                return false;
            };
            segments.push(Segment::Index(i));
            rest = &inner[close + 1..];
        }
    }
    let Some(last) = segments.pop() else {
        return false;
    };
    let mut current = TableOrArray::Table(table);
    for segment in segments {
        current = match (current, segment) {
            (TableOrArray::Table(t), Segment::Key(k)) => match t.get_mut(&k) {
                Some(toml::Value::Table(t)) => TableOrArray::Table(t),
                Some(toml::Value::Array(a)) => TableOrArray::Array(a),
                _ => return false,
            },
            (TableOrArray::Array(a), Segment::Index(i)) => match a.get_mut(i) {
                Some(toml::Value::Table(t)) => TableOrArray::Table(t),
                Some(toml::Value::Array(a)) => TableOrArray::Array(a),
                _ => return false,
            },
            _ => return false,
        };
    }
    match (current, last) {
        (TableOrArray::Table(t), Segment::Key(k)) => t.remove(&k).is_some(),
        (TableOrArray::Array(a), Segment::Index(i)) if i < a.len() => {
            a.remove(i);
            true
        }
        _ => false,
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

enum TableOrArray<'a> {
    Table(&'a mut toml::Table),
    Array(&'a mut Vec<toml::Value>),
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}
