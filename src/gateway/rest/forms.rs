//! What pyCSM sends (rest.md §1.2): `application/x-www-form-urlencoded` fields,
//! Python `repr`s of lists (`[['DS8000:2107.X:VOL:3000', '…']]`, `None`), and
//! Python booleans in paths (`True`/`False`).

use std::collections::HashMap;

use serde_json::Value;

/// A request's form fields (the last of a repeated name wins in [`Form::get`];
/// [`Form::all`] gives every value of a repeated name, as a group of checkboxes
/// sends them).
#[derive(Debug, Default)]
pub(crate) struct Form(HashMap<String, String>, Vec<(String, String)>);

impl Form {
    /// Parses a urlencoded body; anything undecodable is dropped, not an error (the
    /// handler then names the field it misses).
    pub(crate) fn parse(body: &[u8]) -> Form {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Form(pairs.iter().cloned().collect(), pairs)
    }

    /// Every value of field `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.1
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A field, if present and not Python's `None`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| *v != "None")
    }
}

/// `True`/`true`/`False`/`false` as pyCSM puts booleans in paths.
pub(crate) fn boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Deepest nesting accepted in a list (copy sets are two levels).
const MAX_DEPTH: usize = 4;

/// A Python `repr` (or JSON) of lists, strings, numbers, `True`/`False`/`None`, as
/// JSON. Single- and double-quoted strings with backslash escapes.
pub(crate) fn python_literal(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let v = p.value(0)?;
    p.blank();
    if p.at != p.s.len() {
        return Err(format!("unexpected text at offset {}", p.at));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn blank(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        self.blank();
        match self.s.get(self.at) {
            Some(b'[') | Some(b'(') => self.list(depth),
            Some(b'\'') | Some(b'"') => self.string().map(Value::String),
            Some(_) => self.word(),
            None => Err("the value ends early".into()),
        }
    }

    fn list(&mut self, depth: usize) -> Result<Value, String> {
        if depth >= MAX_DEPTH {
            return Err("lists nested too deeply".into());
        }
        let close = if self.s[self.at] == b'[' { b']' } else { b')' };
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.blank();
            if self.s.get(self.at) == Some(&close) {
                self.at += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value(depth + 1)?);
            self.blank();
            match self.s.get(self.at) {
                Some(b',') => self.at += 1,
                Some(c) if *c == close => {}
                _ => return Err(format!("expected , or a list's end at offset {}", self.at)),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.at];
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.at) {
                None => return Err("a string is not closed".into()),
                Some(b'\\') => {
                    let c = *self.s.get(self.at + 1).ok_or("a string is not closed")?;
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                    self.at += 2;
                }
                Some(c) if *c == quote => {
                    self.at += 1;
                    return String::from_utf8(out).map_err(|_| "a string is not UTF-8".into());
                }
                Some(c) => {
                    out.push(*c);
                    self.at += 1;
                }
            }
        }
    }

    fn word(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+'))
        {
            self.at += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.at]).unwrap_or_default();
        match word {
            "" => Err(format!("unexpected character at offset {start}")),
            "None" | "null" => Ok(Value::Null),
            "True" | "true" => Ok(Value::Bool(true)),
            "False" | "false" => Ok(Value::Bool(false)),
            n => serde_json::from_str::<serde_json::Number>(n)
                .map(Value::Number)
                .map_err(|_| format!("{n} is not a value")),
        }
    }
}

/// A list of lists of strings (copy sets); a flat list of strings is one copy set per
/// string (rest.md §2.3).
pub(crate) fn string_lists(text: &str) -> Result<Vec<Vec<String>>, String> {
    let v = python_literal(text)?;
    let Value::Array(items) = v else {
        return Err("copysets is a list".into());
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(vec![s]),
            Value::Array(inner) => inner
                .into_iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s),
                    other => Err(format!("{other} is not a volume id")),
                })
                .collect(),
            other => Err(format!("{other} is not a copy set")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pycsm_reprs_parse() {
        assert_eq!(
            string_lists("[['DS8000:2107.A:VOL:3000', 'DS8000:2107.A:VOL:3100']]").unwrap(),
            vec![vec![
                "DS8000:2107.A:VOL:3000".to_owned(),
                "DS8000:2107.A:VOL:3100".to_owned()
            ]]
        );
        assert_eq!(
            string_lists(r#"["a", ["b", "c"]]"#).unwrap(),
            vec![vec!["a".to_owned()], vec!["b".to_owned(), "c".to_owned()]]
        );
        assert_eq!(python_literal("None").unwrap(), Value::Null);
        assert_eq!(
            python_literal("['H1', 'T1']").unwrap(),
            serde_json::json!(["H1", "T1"])
        );
        assert_eq!(
            python_literal("(1, True)").unwrap(),
            serde_json::json!([1, true])
        );
        for bad in ["[", "['a'", "[[[[[1]]]]]", "['a' 'b']", "x y", "'\\"] {
            assert!(python_literal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forms_and_booleans() {
        let f = Form::parse(b"cmd=Flash&description=None&name=a%20b");
        assert_eq!(f.get("cmd"), Some("Flash"));
        assert_eq!(f.get("description"), None);
        assert_eq!(f.get("name"), Some("a b"));
        assert_eq!(boolean("True"), Some(true));
        assert_eq!(boolean("false"), Some(false));
        assert_eq!(boolean("yes"), None);
    }
}
