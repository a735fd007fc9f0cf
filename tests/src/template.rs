//! A renderer for the plain subset of Helm's Go templates the chart is restricted to, so the
//! chart can be checked without Helm. Anything outside the subset is an error, which keeps the
//! templates plain.
//!
//! Supported actions (each may trim whitespace with `{{-` / `-}}`):
//! - `{{ .Values.a.b }}`, `{{ .Release.Name }}`, `{{ .Release.Namespace }}`, `{{ .Chart.Name }}`,
//!   `{{ .Chart.AppVersion }}`, `{{ .Chart.Version }}`;
//! - pipelines `| quote`, `| default <value>`, and `toYaml <value> | nindent N`;
//! - `{{ if <value> }}` / `{{ else }}` / `{{ end }}` (truthiness as in Go templates), nestable;
//! - comments `{{/* ... */}}`.

use serde_json::Value;
use thiserror::Error;

/// A template that cannot be rendered.
#[derive(Debug, Error, PartialEq)]
pub enum TemplateError {
    /// An action outside the supported subset.
    #[error("{file}:{line}: unsupported template action {action:?}")]
    Unsupported {
        /// Template file.
        file: String,
        /// 1-based line.
        line: usize,
        /// The action text.
        action: String,
    },
    /// A reference to a value that does not exist.
    #[error("{file}:{line}: {path} is not set")]
    Missing {
        /// Template file.
        file: String,
        /// 1-based line.
        line: usize,
        /// The referenced path.
        path: String,
    },
    /// `{{` without `}}`, or `if` without `end`.
    #[error("{file}: {problem}")]
    Unbalanced {
        /// Template file.
        file: String,
        /// What is unbalanced.
        problem: String,
    },
}

/// What templates can refer to.
pub struct Scope {
    /// `.Values`, `.Release`, `.Chart` as one object.
    pub root: Value,
}

enum Piece {
    Text(String),
    Action { text: String, line: usize },
}

fn lex(file: &str, src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut line = 1;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_owned();
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| TemplateError::Unbalanced {
            file: file.to_owned(),
            problem: format!("line {line}: '{{{{' without '}}}}'"),
        })?;
        let mut action = &after[..end];
        let trim_left = action.starts_with('-');
        let trim_right = action.ends_with('-');
        if trim_left {
            action = &action[1..];
            text = text.trim_end().to_owned();
        }
        if trim_right {
            action = &action[..action.len() - 1];
        }
        line += rest[..start].matches('\n').count();
        pieces.push(Piece::Text(text));
        pieces.push(Piece::Action {
            text: action.trim().to_owned(),
            line,
        });
        line += action.matches('\n').count();
        rest = &after[end + 2..];
        if trim_right {
            rest = rest.trim_start();
        }
    }
    pieces.push(Piece::Text(rest.to_owned()));
    Ok(pieces)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Scope {
    fn lookup(&self, path: &str) -> Option<&Value> {
        let mut v = &self.root;
        for seg in path.trim_start_matches('.').split('.') {
            v = v.get(seg)?;
        }
        Some(v)
    }

    fn operand(&self, file: &str, line: usize, word: &str) -> Result<Option<Value>, TemplateError> {
        if word.starts_with('.') {
            if !(word.starts_with(".Values")
                || word.starts_with(".Release")
                || word.starts_with(".Chart"))
            {
                return Err(TemplateError::Unsupported {
                    file: file.to_owned(),
                    line,
                    action: word.to_owned(),
                });
            }
            return Ok(self.lookup(word).cloned());
        }
        if let Some(s) = word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
            return Ok(Some(Value::String(s.to_owned())));
        }
        match serde_json::from_str::<Value>(word) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v)),
            _ => Err(TemplateError::Unsupported {
                file: file.to_owned(),
                line,
                action: word.to_owned(),
            }),
        }
    }

    fn pipeline(&self, file: &str, line: usize, action: &str) -> Result<String, TemplateError> {
        let unsupported = || TemplateError::Unsupported {
            file: file.to_owned(),
            line,
            action: action.to_owned(),
        };
        let mut stages = action.split('|').map(str::trim);
        let first = stages.next().ok_or_else(unsupported)?;
        let words: Vec<&str> = first.split_whitespace().collect();
        let (mut value, yaml) = match words.as_slice() {
            [path] => (self.operand(file, line, path)?, false),
            ["toYaml", path] => (self.operand(file, line, path)?, true),
            _ => return Err(unsupported()),
        };
        let mut out: Option<String> = None;
        for stage in stages {
            let words: Vec<&str> = stage.split_whitespace().collect();
            match words.as_slice() {
                ["default", d] => {
                    if !value.as_ref().is_some_and(truthy) {
                        value = self.operand(file, line, d)?;
                    }
                }
                ["quote"] => {
                    out = Some(format!(
                        "{:?}",
                        to_text(value.as_ref().unwrap_or(&Value::Null))
                    ))
                }
                ["nindent", n] if yaml => {
                    let n: usize = n.parse().map_err(|_| unsupported())?;
                    let v = value.clone().unwrap_or(Value::Null);
                    let text = serde_yaml::to_string(&v).map_err(|_| unsupported())?;
                    let pad = " ".repeat(n);
                    out = Some(
                        text.trim_end()
                            .lines()
                            .map(|l| format!("\n{pad}{l}"))
                            .collect(),
                    );
                }
                _ => return Err(unsupported()),
            }
        }
        match (out, value) {
            (Some(o), _) => Ok(o),
            (None, _) if yaml => Err(unsupported()),
            (None, Some(v)) => Ok(to_text(&v)),
            (None, None) => Err(TemplateError::Missing {
                file: file.to_owned(),
                line,
                path: first.to_owned(),
            }),
        }
    }

    /// Render `src` (named `file` in errors).
    pub fn render(&self, file: &str, src: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        // Stack of (this branch is emitting, an earlier branch was taken).
        let mut stack: Vec<(bool, bool)> = Vec::new();
        let emitting = |stack: &[(bool, bool)]| stack.iter().all(|(e, _)| *e);
        for piece in lex(file, src)? {
            match piece {
                Piece::Text(t) => {
                    if emitting(&stack) {
                        out.push_str(&t);
                    }
                }
                Piece::Action { text, line } => {
                    if text.starts_with("/*") && text.ends_with("*/") {
                        continue;
                    }
                    if let Some(cond) = text.strip_prefix("if ") {
                        let v = self.operand(file, line, cond.trim())?;
                        let t = v.as_ref().is_some_and(truthy);
                        stack.push((t, t));
                    } else if text == "else" {
                        let top = stack.last_mut().ok_or_else(|| TemplateError::Unbalanced {
                            file: file.to_owned(),
                            problem: format!("line {line}: else without if"),
                        })?;
                        *top = (!top.1, true);
                    } else if text == "end" {
                        stack.pop().ok_or_else(|| TemplateError::Unbalanced {
                            file: file.to_owned(),
                            problem: format!("line {line}: end without if"),
                        })?;
                    } else if emitting(&stack) {
                        out.push_str(&self.pipeline(file, line, &text)?);
                    }
                }
            }
        }
        if !stack.is_empty() {
            return Err(TemplateError::Unbalanced {
                file: file.to_owned(),
                problem: "if without end".to_owned(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope() -> Scope {
        Scope {
            root: json!({
                "Values": {"image": {"repository": "r", "tag": ""}, "on": true, "off": false, "res": {"cpu": "1"}},
                "Release": {"Namespace": "ns", "Name": "vigil"},
                "Chart": {"AppVersion": "0.1.0"}
            }),
        }
    }

    #[test]
    fn render_table() {
        let table = [
            ("a: {{ .Release.Namespace }}", Ok("a: ns".to_owned())),
            (
                "i: {{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}",
                Ok("i: r:0.1.0".to_owned()),
            ),
            (
                "q: {{ .Values.image.repository | quote }}",
                Ok("q: \"r\"".to_owned()),
            ),
            (
                "x:\n  {{- toYaml .Values.res | nindent 2 }}",
                Ok("x:\n  cpu: '1'".to_owned()),
            ),
            (
                "{{- if .Values.on }}\nyes\n{{- else }}\nno\n{{- end }}",
                Ok("\nyes".to_owned()),
            ),
            (
                "{{- if .Values.off }}\nyes\n{{- else }}\nno\n{{- end }}",
                Ok("\nno".to_owned()),
            ),
            ("{{/* note */}}a", Ok("a".to_owned())),
        ];
        for (src, want) in table {
            assert_eq!(scope().render("t.yaml", src), want, "{src}");
        }
    }

    #[test]
    fn unsupported_and_missing_are_errors_with_lines() {
        let s = scope();
        assert!(matches!(
            s.render("t", "a\n{{ include \"x\" . }}"),
            Err(TemplateError::Unsupported { line: 2, .. })
        ));
        assert!(matches!(
            s.render("t", "{{ .Values.nope }}"),
            Err(TemplateError::Missing { .. })
        ));
        assert!(matches!(
            s.render("t", "{{ if .Values.on }}"),
            Err(TemplateError::Unbalanced { .. })
        ));
        assert!(matches!(
            s.render("t", "{{ .Capabilities.KubeVersion }}"),
            Err(TemplateError::Unsupported { .. })
        ));
    }
}
