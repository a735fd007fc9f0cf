//! Secrets in command lines (passwords, tokens, keys) are replaced by `[REDACTED]` before any
//! finding holds them: findings leave the host and end up in tickets and chat channels.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

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
    /// A bare secret-bearing name (`aws_secret_access_key`) whose value follows `set NAME`.
    secret_name: Regex,
    /// OpenSSL's `pass:secret` password source (`-pass`, `-passin`, `-passout`).
    openssl_pass: Regex,
    /// A PEM private key pasted into a command line.
    private_key: Regex,
    /// The programs' secret flags of [`SECRET_SHORT_FLAGS`] and [`LOGIN_P_FLAG`] inside one
    /// string (a `sh -c` script): `redis-cli -a secret`, `docker login -p secret`.
    script_flags: Vec<Regex>,
    /// Every pattern above in one set: a text none of them matches is returned as it is, after
    /// one pass over it (most arguments hold no secret). A text one of them matches goes
    /// through each replacement in turn, as before.
    any: RegexSet,
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    let mut p = Patterns {
        any: RegexSet::empty(),
        auth_scheme: Regex::new(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}").ok()?,
        key_value: Regex::new(&format!(
            r"(?i)([\w.-]*{SECRET_WORDS}[\w.-]*)(=|:\s*)([^\s&'\x22;]+)"
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
            r"\b((AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9_-]{20,}|sk_live_[A-Za-z0-9]{16,}|hv[sbr]\.[A-Za-z0-9_-]{20,}|npm_[A-Za-z0-9]{30,}|AIza[0-9A-Za-z_-]{35})\b",
        )
        .ok()?,
        secret_flag: Regex::new(&format!(r"(?i)^--?[\w-]*{SECRET_WORDS}[\w-]*$")).ok()?,
        secret_name: Regex::new(&format!(r"(?i)^[\w.-]*{SECRET_WORDS}[\w.-]*$")).ok()?,
        openssl_pass: Regex::new(r"\bpass:(\S+)").ok()?,
        private_key: Regex::new(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
        )
        .ok()?,
        script_flags: SECRET_SHORT_FLAGS
            .iter()
            .flat_map(|(program, flags)| flags.iter().map(move |f| (program.to_string(), *f)))
            .chain(LOGIN_P_FLAG.iter().map(|p| (format!("{p}\\s+login"), "-p")))
            .map(|(program, flag)| {
                Regex::new(&format!(r"(\b{program}\b[^|;&\n]*\s{flag})\s+([^\s|;&]+)"))
            })
            .collect::<Result<_, _>>()
            .ok()?,
    };
    let replaced = [
        &p.private_key,
        &p.token_shapes,
        &p.openssl_pass,
        &p.auth_scheme,
        &p.url_credentials,
        &p.user_password_flag,
        &p.mysql_password,
        &p.flag_space_value,
        &p.key_value,
    ];
    p.any = RegexSet::new(
        replaced
            .into_iter()
            .chain(&p.script_flags)
            .map(Regex::as_str),
    )
    .ok()?;
    Some(p)
});

/// Programs whose `-p` flag carries a password, attached (`-psecret`) or as the next argument.
const PASSWORD_P_FLAG: &[&str] = &["mysql", "mysqldump", "mysqladmin", "mariadb", "sshpass"];
/// Programs whose `-u` / `--user` value is `user:password`.
const USER_PASSWORD_FLAG: &[&str] = &["curl", "wget"];
/// Programs and the short flags whose next argument is a password or key.
const SECRET_SHORT_FLAGS: &[(&str, &[&str])] = &[
    ("redis-cli", &["-a"]),
    ("openssl", &["-k", "-K"]),
    ("sshpass", &["-p"]),
    ("mongo", &["-p"]),
    ("mongosh", &["-p"]),
];
/// Programs whose `login` subcommand takes the password after `-p`.
const LOGIN_P_FLAG: &[&str] = &[
    "docker", "podman", "buildah", "skopeo", "nerdctl", "helm", "oras",
];

/// Redacts one string (an argument, or a whole script given to `sh -c`).
pub fn redact_text(text: &str) -> String {
    let Some(p) = PATTERNS.as_ref() else {
        // The patterns are constants covered by tests; should one fail to compile, hide
        // everything rather than leak.
        return REDACTED.to_owned();
    };
    if !p.any.is_match(text) {
        return text.to_owned();
    }
    replace_each(p, text)
}

/// Every replacement in turn (a text none of the patterns matches comes out as it went in).
fn replace_each(p: &Patterns, text: &str) -> String {
    let text = p.private_key.replace_all(text, REDACTED);
    let text = p.token_shapes.replace_all(&text, REDACTED);
    let text = p
        .openssl_pass
        .replace_all(&text, format!("pass:{REDACTED}").as_str());
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
    let mut text = text.into_owned();
    for flag in &p.script_flags {
        text = flag
            .replace_all(&text, format!("${{1}} {REDACTED}").as_str())
            .into_owned();
    }
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
    let login_p_flag = LOGIN_P_FLAG.contains(&program) && argv.iter().any(|a| a == "login");
    let short_flags = SECRET_SHORT_FLAGS
        .iter()
        .find(|(p, _)| *p == program)
        .map_or(&[][..], |(_, flags)| *flags);
    // `htpasswd -b FILE USER PASSWORD` (or `-nb USER PASSWORD`): the password is the last word.
    let htpasswd_batch = program == "htpasswd"
        && argv
            .iter()
            .skip(1)
            .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('b'));
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
        if i > 0 && htpasswd_batch && i == argv.len() - 1 && !arg.starts_with('-') {
            out.push(REDACTED.to_owned());
            continue;
        }
        if i > 0 && p_flag && arg.len() > 2 && arg.starts_with("-p") && !arg.starts_with("--") {
            out.push(format!("-p{REDACTED}"));
            continue;
        }
        let next_is_secret = short_flags.contains(&arg.as_str())
            || (login_p_flag && arg == "-p")
            || (i > 1
                && argv[i - 1] == "set"
                && PATTERNS
                    .as_ref()
                    .is_some_and(|p| p.secret_name.is_match(arg)));
        if i > 0 && next_is_secret {
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
            (
                &["curl", "-H", "X-Api-Key: 0123456789abcdef", "https://x"],
                "curl -H X-Api-Key: [REDACTED] https://x",
            ),
            (
                &["curl", "-H", "X-Auth-Token:abc123", "https://x"],
                "curl -H X-Auth-Token:[REDACTED] https://x",
            ),
            (
                &[
                    "openssl",
                    "enc",
                    "-aes-256-cbc",
                    "-pass",
                    "pass:hunter2",
                    "-in",
                    "f",
                ],
                "openssl enc -aes-256-cbc -pass pass:[REDACTED] -in f",
            ),
            (
                &[
                    "openssl",
                    "pkcs12",
                    "-passin",
                    "pass:hunter2",
                    "-passout",
                    "env:PW",
                ],
                "openssl pkcs12 -passin pass:[REDACTED] -passout env:PW",
            ),
            (
                &["openssl", "enc", "-d", "-k", "hunter2", "-in", "f"],
                "openssl enc -d -k [REDACTED] -in f",
            ),
            (
                &[
                    "docker", "login", "-u", "alice", "-p", "hunter2", "registry",
                ],
                "docker login -u alice -p [REDACTED] registry",
            ),
            (
                &["docker", "login", "--password", "hunter2", "registry"],
                "docker login --password [REDACTED] registry",
            ),
            (
                &["docker", "run", "-p", "8080:80", "nginx"],
                "docker run -p 8080:80 nginx",
            ),
            (
                &["redis-cli", "-h", "db", "-a", "hunter2", "ping"],
                "redis-cli -h db -a [REDACTED] ping",
            ),
            (
                &["htpasswd", "-b", "/etc/nginx/htpasswd", "alice", "hunter2"],
                "htpasswd -b /etc/nginx/htpasswd alice [REDACTED]",
            ),
            (
                &["htpasswd", "-nb", "alice", "hunter2"],
                "htpasswd -nb alice [REDACTED]",
            ),
            (
                &["htpasswd", "-c", "/etc/nginx/htpasswd", "alice"],
                "htpasswd -c /etc/nginx/htpasswd alice",
            ),
            (
                &[
                    "aws",
                    "configure",
                    "set",
                    "aws_secret_access_key",
                    "wJalrXUtnFEMI/K7MDENG",
                ],
                "aws configure set aws_secret_access_key [REDACTED]",
            ),
            (
                &["aws", "configure", "set", "region", "eu-west-1"],
                "aws configure set region eu-west-1",
            ),
            (
                &["vault", "login", "hvs.CAESIJlU9JMYEhOPYv4KMVS5Wv2dbTk"],
                "vault login [REDACTED]",
            ),
            (
                &[
                    "sh",
                    "-c",
                    "VAULT_TOKEN=hvs.abcdefghijklmnopqrstuvwx vault kv get x",
                ],
                "sh -c VAULT_TOKEN=[REDACTED] vault kv get x",
            ),
            (
                &["mongosh", "-u", "admin", "-p", "hunter2"],
                "mongosh -u admin -p [REDACTED]",
            ),
            (
                &[
                    "sh",
                    "-c",
                    "echo '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----' > k",
                ],
                "sh -c echo '[REDACTED]' > k",
            ),
            (
                &["sh", "-c", "redis-cli -a hunter2 ping"],
                "sh -c redis-cli -a [REDACTED] ping",
            ),
            (
                &[
                    "bash",
                    "-c",
                    "docker login -u ci -p hunter2 reg && docker push x",
                ],
                "bash -c docker login -u ci -p [REDACTED] reg && docker push x",
            ),
        ];
        for (input, want) in table {
            assert_eq!(redacted_command_line(&argv(input)), *want, "{input:?}");
        }
    }

    #[test]
    fn patterns_compile() {
        assert!(PATTERNS.is_some());
    }

    /// Texts built from fragments of secrets and of ordinary command lines.
    fn fragments() -> impl proptest::strategy::Strategy<Value = String> {
        const PARTS: &[&str] = &[
            " ",
            "=",
            ":",
            "@",
            "-p",
            "-u ",
            "--password ",
            "password",
            "TOKEN",
            "api_key",
            "Bearer ",
            "basic ",
            "https://",
            "user",
            "hunter2",
            "AKIAABCDEFGHIJKLMNOP",
            "ghp_",
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "mysql ",
            "redis-cli -a ",
            "docker login ",
            "pass:",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----END RSA PRIVATE KEY-----",
            "eyJ",
            ".",
            "/usr/bin/ls -la",
            "for i in 1 2; do echo $i; done",
            "|",
            ";",
            "'",
            "\"",
            "\n",
            "[REDACTED]",
            "sk-",
            "x",
        ];
        proptest::collection::vec(proptest::sample::select(PARTS), 0..12)
            .prop_map(|parts| parts.concat())
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// The one-pass check never changes what comes out: a text it lets through unchanged
        /// is one every replacement leaves as it is.
        #[test]
        fn the_set_check_changes_nothing(text in fragments()) {
            let p = PATTERNS.as_ref().expect("patterns");
            proptest::prop_assert_eq!(redact_text(&text), replace_each(p, &text));
        }
    }
}
