//! Secrets in command lines (passwords, tokens, keys) are replaced by `[REDACTED]` before any
//! finding holds them: findings leave the host and end up in tickets and chat channels.

use std::sync::LazyLock;

use regex::Regex;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Words that make an option or variable name secret-bearing.
const SECRET_WORDS: &str = r"(password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret|credentials?)";

struct Patterns {
    /// `Bearer xxx`, `Basic xxx`.
    auth_scheme: Regex,
    /// `--password=x`, `DB_PASSWORD=x`, `token:x`.
    key_value: Regex,
    /// `--password x` inside one string (a `sh -c` script).
    flag_space_value: Regex,
    /// `scheme://user:password@host`.
    url_credentials: Regex,
    /// `-u user:password` / `--user user:password` inside one string.
    user_password_flag: Regex,
    /// `mysql ... -psecret` inside one string.
    mysql_password: Regex,
    /// Well-known token shapes (AWS keys, GitHub, GitLab, Slack, JWTs, sk- keys).
    token_shapes: Regex,
    /// A whole argument that names a secret-bearing option whose value is the next argument.
    secret_flag: Regex,
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    Some(Patterns {
        auth_scheme: Regex::new(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}").ok()?,
        key_value: Regex::new(&format!(
            r"(?i)([\w.-]*{SECRET_WORDS}[\w.-]*)([=:])([^\s&'\x22;]+)"
        ))
        .ok()?,
        flag_space_value: Regex::new(&format!(
            r"(?i)(\s--?[\w-]*{SECRET_WORDS}[\w-]*)\s+([^\s-][^\s]*)"
        ))
        .ok()?,
        url_credentials: Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]+):([^@\s/]+)@").ok()?,
        user_password_flag: Regex::new(r"(\s(?:-u|--user)\s+[^:\s]+):(\S+)").ok()?,
        mysql_password: Regex::new(r"(\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^|;&]*\s)-p(\S+)")
            .ok()?,
        token_shapes: Regex::new(
            r"\b((AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9_-]{20,}|sk_live_[A-Za-z0-9]{16,})\b",
        )
        .ok()?,
        secret_flag: Regex::new(&format!(r"(?i)^--?[\w-]*{SECRET_WORDS}[\w-]*$")).ok()?,
    })
});

/// Programs whose `-p` flag carries a password, attached (`-psecret`) or as the next argument.
const PASSWORD_P_FLAG: &[&str] = &["mysql", "mysqldump", "mysqladmin", "mariadb", "sshpass"];
/// Programs whose `-u` / `--user` value is `user:password`.
const USER_PASSWORD_FLAG: &[&str] = &["curl", "wget"];

/// Redacts one string (an argument, or a whole script given to `sh -c`).
pub fn redact_text(text: &str) -> String {
    let Some(p) = PATTERNS.as_ref() else {
        // The patterns are constants covered by tests; should one fail to compile, hide
        // everything rather than leak.
        return REDACTED.to_owned();
    };
    let text = p.token_shapes.replace_all(text, REDACTED);
    let text = p
        .auth_scheme
        .replace_all(&text, format!("${{1}} {REDACTED}").as_str());
    let text = p
        .url_credentials
        .replace_all(&text, format!("${{1}}:{REDACTED}@").as_str());
    let text = p
        .user_password_flag
        .replace_all(&text, format!("${{1}}:{REDACTED}").as_str());
    let text = p
        .mysql_password
        .replace_all(&text, format!("${{1}}-p{REDACTED}").as_str());
    let text = p
        .flag_space_value
        .replace_all(&text, format!("${{1}} {REDACTED}").as_str());
    let text = p.key_value.replace_all(&text, |c: &regex::Captures<'_>| {
        let value = c.get(4).map_or("", |m| m.as_str());
        if value.starts_with(REDACTED) || value.is_empty() {
            c[0].to_owned()
        } else {
            format!("{}{}{REDACTED}", &c[1], &c[3])
        }
    });
    text.into_owned()
}

/// Redacts an argument vector: each argument alone, plus values that follow a secret-bearing
/// option in the next argument.
pub fn redact_argv(argv: &[String]) -> Vec<String> {
    let program = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("");
    let p_flag = PASSWORD_P_FLAG.contains(&program);
    let user_flag = USER_PASSWORD_FLAG.contains(&program);
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    let mut user_next = false;
    for (i, arg) in argv.iter().enumerate() {
        if hide_next {
            out.push(REDACTED.to_owned());
            hide_next = false;
            continue;
        }
        if user_next {
            user_next = false;
            if let Some((user, _)) = arg.split_once(':') {
                out.push(format!("{user}:{REDACTED}"));
                continue;
            }
        }
        if i > 0 && p_flag && arg.len() > 2 && arg.starts_with("-p") && !arg.starts_with("--") {
            out.push(format!("-p{REDACTED}"));
            continue;
        }
        if i > 0 && p_flag && program == "sshpass" && arg == "-p" {
            out.push(arg.clone());
            hide_next = true;
            continue;
        }
        if i > 0 && user_flag && (arg == "-u" || arg == "--user") {
            out.push(arg.clone());
            user_next = true;
            continue;
        }
        if i > 0
            && PATTERNS
                .as_ref()
                .is_some_and(|p| p.secret_flag.is_match(arg))
        {
            out.push(arg.clone());
            hide_next = true;
            continue;
        }
        out.push(redact_text(arg));
    }
    out
}

/// The command line of an argument vector, redacted, arguments joined by spaces.
pub fn redacted_command_line(argv: &[String]) -> String {
    redact_argv(argv).join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let table: &[(&[&str], &str)] = &[
            (
                &["mysql", "-u", "root", "-phunter2", "shop"],
                "mysql -u root -p[REDACTED] shop",
            ),
            (
                &["app", "--password", "hunter2", "--port", "80"],
                "app --password [REDACTED] --port 80",
            ),
            (&["app", "--password=hunter2"], "app --password=[REDACTED]"),
            (
                &[
                    "env",
                    "DB_PASSWORD=hunter2",
                    "AWS_SECRET_ACCESS_KEY=abc/def",
                    "run",
                ],
                "env DB_PASSWORD=[REDACTED] AWS_SECRET_ACCESS_KEY=[REDACTED] run",
            ),
            (
                &[
                    "curl",
                    "-H",
                    "Authorization: Bearer abcdef123456",
                    "https://x",
                ],
                "curl -H Authorization: Bearer [REDACTED] https://x",
            ),
            (
                &["curl", "-u", "alice:hunter2", "https://x"],
                "curl -u alice:[REDACTED] https://x",
            ),
            (
                &["git", "clone", "https://alice:hunter2@git.example/r.git"],
                "git clone https://alice:[REDACTED]@git.example/r.git",
            ),
            (
                &["sh", "-c", "mysql -uroot -phunter2 -e 'select 1'"],
                "sh -c mysql -uroot -p[REDACTED] -e 'select 1'",
            ),
            (
                &["sh", "-c", "deploy --token abc123 && echo done"],
                "sh -c deploy --token [REDACTED] && echo done",
            ),
            (
                &["aws", "configure", "set", "key", "AKIAABCDEFGHIJKLMNOP"],
                "aws configure set key [REDACTED]",
            ),
            (
                &["sshpass", "-p", "hunter2", "ssh", "h"],
                "sshpass -p [REDACTED] ssh h",
            ),
            (
                &["ls", "-la", "/etc/passwd", "--color=auto"],
                "ls -la /etc/passwd --color=auto",
            ),
            (&["nmap", "-p", "80", "127.0.0.1"], "nmap -p 80 127.0.0.1"),
        ];
        for (input, want) in table {
            assert_eq!(redacted_command_line(&argv(input)), *want, "{input:?}");
        }
    }

    #[test]
    fn patterns_compile() {
        assert!(PATTERNS.is_some());
    }
}
