//! DGA (domain generation algorithm) detection with a character trigram language model.
//!
//! The model knows what benign registrable names look like: it holds trigram counts of the
//! registrable labels of benign domains (`google` in `mail.google.co.uk`). A name's score is
//! a log-likelihood ratio in bits: how much more likely the label is under a uniform random
//! draw of its characters than under the benign model. Random-looking names such as
//! `xjo4vk9bk1f19hxz` score high, pronounceable ones low. A name is flagged when its label is
//! at least `min_len` characters long and its score reaches `threshold`, a cut chosen on a
//! held-out benign sample for a target false-positive rate. Everything is in one text file of
//! counts and two numbers, so a verdict can be explained by the trigrams that drove it.

use std::fmt::Write as _;

/// Number of symbols: boundary, `a`-`z`, `0`-`9`, `-`, and one for anything else.
pub const ALPHABET: usize = 39;
const BOUNDARY: usize = 0;
const OTHER: usize = 38;
const TABLE: usize = ALPHABET * ALPHABET * ALPHABET;

fn symbol(b: u8) -> usize {
    match b {
        b'a'..=b'z' => usize::from(b - b'a') + 1,
        b'A'..=b'Z' => usize::from(b - b'A') + 1,
        b'0'..=b'9' => usize::from(b - b'0') + 27,
        b'-' => 37,
        _ => OTHER,
    }
}

fn symbol_char(s: usize) -> char {
    match s {
        BOUNDARY => '^',
        1..=26 => char::from(b'a' + s as u8 - 1),
        27..=36 => char::from(b'0' + s as u8 - 27),
        37 => '-',
        _ => '?',
    }
}

fn char_symbol(c: char) -> Option<usize> {
    match c {
        '^' => Some(BOUNDARY),
        '?' => Some(OTHER),
        'a'..='z' | '0'..='9' | '-' => Some(symbol(c as u8)),
        _ => None,
    }
}

/// Second-level labels that are part of a public suffix (`co.uk`, `com.cn`, ...): the name
/// before them is the registrable one. A short list instead of the full Public Suffix List
/// keeps the model self-contained; it covers the country-code patterns that matter for scoring.
const SECOND_LEVEL_SUFFIXES: &[&str] = &[
    "ac", "co", "com", "edu", "gob", "gov", "go", "ltd", "mil", "ne", "net", "nic", "nom", "or",
    "org", "plc", "sch",
];

/// The label a DGA would generate: the one left of the public suffix (`example` in
/// `www.example.co.uk`). `None` for a bare TLD or an empty name.
pub fn registrable_label(domain: &str) -> Option<&str> {
    let name = domain.trim().trim_end_matches('.');
    let mut labels = name.rsplit('.');
    let _tld = labels.next()?;
    let mut label = labels.next()?;
    if SECOND_LEVEL_SUFFIXES
        .iter()
        .any(|s| label.eq_ignore_ascii_case(s))
        && let Some(next) = labels.next()
    {
        label = next;
    }
    (!label.is_empty()).then_some(label)
}

/// Trigram counts over registrable labels, with boundary symbols at both ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrigramCounts {
    counts: Vec<u32>,
}

impl Default for TrigramCounts {
    fn default() -> Self {
        Self {
            counts: vec![0; TABLE],
        }
    }
}

fn index(a: usize, b: usize, c: usize) -> usize {
    (a * ALPHABET + b) * ALPHABET + c
}

impl TrigramCounts {
    /// Counts the trigrams of one label (`^^l`, `^la`, ..., `el^`).
    pub fn add(&mut self, label: &str) {
        let (mut a, mut b) = (BOUNDARY, BOUNDARY);
        for c in label.bytes().map(symbol).chain([BOUNDARY]) {
            let slot = &mut self.counts[index(a, b, c)];
            *slot = slot.saturating_add(1);
            (a, b) = (b, c);
        }
    }

    /// Number of distinct trigrams seen.
    pub fn distinct(&self) -> usize {
        self.counts.iter().filter(|&&n| n > 0).count()
    }
}

/// Parameters stored next to the counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DgaParams {
    /// Score (bits per character) at or above which a name is flagged.
    pub threshold: f32,
    /// Labels shorter than this are never flagged: too little evidence.
    pub min_len: usize,
    /// Weight of the lower-order estimate when backing off (Dirichlet prior strength).
    pub smoothing: f32,
}

/// The model file could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DgaModelError {
    /// A line is not `key value` or `t abc count`.
    #[error("{origin}:{line}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A required parameter is missing.
    #[error("{origin}: missing parameter {field}")]
    Missing {
        /// The file.
        origin: String,
        /// The parameter.
        field: &'static str,
    },
}

/// The model built into the agent, trained by `dga-model train` (see docs/DETECTION.md).
pub const BUILTIN_MODEL: &str = include_str!("../data/dga-model.txt");

/// A DGA scorer: trigram surprise table plus decision parameters. Immutable and cheap to share.
#[derive(Debug, Clone)]
pub struct DgaModel {
    /// `-log2 P(c | a b)` for every trigram.
    surprise: Vec<f32>,
    params: DgaParams,
}

impl DgaModel {
    /// Builds the scorer from counts with interpolated (Dirichlet) smoothing:
    /// `P(c|ab) = (n(abc) + k P(c|b)) / (n(ab) + k)`, likewise for `P(c|b)` over `P(c)`, and
    /// add-one for `P(c)`, so unseen trigrams are surprising but never infinitely so.
    pub fn from_counts(counts: &TrigramCounts, params: DgaParams) -> Self {
        let n = |a, b, c| f64::from(counts.counts[index(a, b, c)]);
        let mut bigram = vec![0f64; ALPHABET * ALPHABET];
        let mut unigram = vec![0f64; ALPHABET];
        for a in 0..ALPHABET {
            for b in 0..ALPHABET {
                for c in 0..ALPHABET {
                    bigram[b * ALPHABET + c] += n(a, b, c);
                    unigram[c] += n(a, b, c);
                }
            }
        }
        let total: f64 = unigram.iter().sum();
        let k = f64::from(params.smoothing.max(f32::MIN_POSITIVE));
        let p1: Vec<f64> = unigram
            .iter()
            .map(|u| (u + 1.0) / (total + ALPHABET as f64))
            .collect();
        let mut p2 = vec![0f64; ALPHABET * ALPHABET];
        for b in 0..ALPHABET {
            let context: f64 = bigram[b * ALPHABET..(b + 1) * ALPHABET].iter().sum();
            for c in 0..ALPHABET {
                p2[b * ALPHABET + c] = (bigram[b * ALPHABET + c] + k * p1[c]) / (context + k);
            }
        }
        let mut surprise = vec![0f32; TABLE];
        for a in 0..ALPHABET {
            for b in 0..ALPHABET {
                let context: f64 = (0..ALPHABET).map(|c| n(a, b, c)).sum();
                for c in 0..ALPHABET {
                    let p = (n(a, b, c) + k * p2[b * ALPHABET + c]) / (context + k);
                    surprise[index(a, b, c)] = (-p.log2()) as f32;
                }
            }
        }
        Self { surprise, params }
    }

    /// The built-in model.
    pub fn builtin() -> Result<Self, DgaModelError> {
        Self::parse(BUILTIN_MODEL, "builtin:dga-model.txt")
    }

    /// Parses a model file written by [`DgaModel::write`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, DgaModelError> {
        let mut counts = TrigramCounts::default();
        let (mut threshold, mut min_len, mut smoothing) = (None, None, None);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let syntax = |message: String| DgaModelError::Syntax {
                origin: origin.to_owned(),
                line: i + 1,
                message,
            };
            let mut fields = line.split_ascii_whitespace();
            let key = fields.next().unwrap_or("");
            let value = fields
                .next()
                .ok_or_else(|| syntax(format!("{key}: missing value")))?;
            match key {
                "threshold" => {
                    threshold = Some(
                        value
                            .parse::<f32>()
                            .map_err(|e| syntax(format!("threshold: {e}")))?,
                    )
                }
                "min_len" => {
                    min_len = Some(
                        value
                            .parse::<usize>()
                            .map_err(|e| syntax(format!("min_len: {e}")))?,
                    )
                }
                "smoothing" => {
                    smoothing = Some(
                        value
                            .parse::<f32>()
                            .map_err(|e| syntax(format!("smoothing: {e}")))?,
                    )
                }
                "t" => {
                    let symbols: Vec<usize> = value.chars().filter_map(char_symbol).collect();
                    let [a, b, c] = symbols[..] else {
                        return Err(syntax(format!("trigram {value:?} is not 3 known symbols")));
                    };
                    let count = fields
                        .next()
                        .ok_or_else(|| syntax("trigram without count".to_owned()))?
                        .parse::<u32>()
                        .map_err(|e| syntax(format!("trigram count: {e}")))?;
                    counts.counts[index(a, b, c)] = count;
                }
                "version" => {}
                other => return Err(syntax(format!("unknown key {other:?}"))),
            }
        }
        let missing = |field| DgaModelError::Missing {
            origin: origin.to_owned(),
            field,
        };
        let params = DgaParams {
            threshold: threshold.ok_or_else(|| missing("threshold"))?,
            min_len: min_len.ok_or_else(|| missing("min_len"))?,
            smoothing: smoothing.ok_or_else(|| missing("smoothing"))?,
        };
        Ok(Self::from_counts(&counts, params))
    }

    /// Writes counts and parameters in the format [`DgaModel::parse`] reads, after `header`
    /// comment lines (provenance).
    pub fn write(counts: &TrigramCounts, params: DgaParams, header: &[String]) -> String {
        let mut out = String::new();
        for line in header {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "version 1");
        let _ = writeln!(out, "threshold {}", params.threshold);
        let _ = writeln!(out, "min_len {}", params.min_len);
        let _ = writeln!(out, "smoothing {}", params.smoothing);
        for a in 0..ALPHABET {
            for b in 0..ALPHABET {
                for c in 0..ALPHABET {
                    let n = counts.counts[index(a, b, c)];
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "t {}{}{} {n}",
                            symbol_char(a),
                            symbol_char(b),
                            symbol_char(c)
                        );
                    }
                }
            }
        }
        out
    }

    /// The decision parameters.
    pub fn params(&self) -> DgaParams {
        self.params
    }

    /// Evidence, in bits, that a label was drawn at random rather than from the benign model:
    /// its surprise under the benign trigram model minus its surprise under a uniform draw from
    /// the label's own character set (letters only: 26 symbols, with digits: 36, with `-` or
    /// anything else: 38). Positive means "looks random"; longer random
    /// labels accumulate more evidence, so no per-length tuning is needed.
    pub fn score_label(&self, label: &str) -> f32 {
        let (mut a, mut b) = (BOUNDARY, BOUNDARY);
        let mut benign = 0f32;
        let (mut letters, mut digits, mut others) = (false, false, false);
        for c in label.bytes().map(symbol).chain([BOUNDARY]) {
            benign += self.surprise[index(a, b, c)];
            match c {
                BOUNDARY => {}
                1..=26 => letters = true,
                27..=36 => digits = true,
                _ => others = true,
            }
            (a, b) = (b, c);
        }
        // Digits alone are scored as a draw from letters and digits: generators that emit
        // only digits are rare, numeric brand names are not.
        let charset: f32 = match (letters, digits, others) {
            (_, _, true) => 38.0,
            (true, false, false) => 26.0,
            _ => 36.0,
        };
        benign - label.len() as f32 * charset.log2()
    }

    /// Score of a domain's registrable label, in bits of evidence for "random" (see
    /// [`DgaModel::score_label`]); 0 when it has none.
    pub fn score(&self, domain: &str) -> f32 {
        registrable_label(domain).map_or(0.0, |l| self.score_label(l))
    }

    /// Whether the domain looks generated: registrable label of at least `min_len` characters
    /// scoring at or above the threshold.
    pub fn is_dga(&self, domain: &str) -> bool {
        registrable_label(domain).is_some_and(|l| {
            l.len() >= self.params.min_len && self.score_label(l) >= self.params.threshold
        })
    }
}

/// Which part of the data a name belongs to, by a fixed hash of the name: the same name always
/// lands in the same split, on any machine, so training and evaluation are reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 70 %: trigram counts.
    Train,
    /// 10 %: choosing the threshold.
    Tune,
    /// 20 %: held apart for the reported precision and recall.
    Test,
}

/// The split of a domain name (FNV-1a of the lowercase name, modulo 10).
pub fn split_of(domain: &str) -> Split {
    let hash = domain.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
    });
    match hash % 10 {
        0..=6 => Split::Train,
        7 => Split::Tune,
        _ => Split::Test,
    }
}

/// The curated list the model is trained on (public domain).
pub const BENIGN_TRAIN: &str = "benign-opendns-domains.txt";

/// Training settings; the defaults are the ones the built-in model was trained with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    /// Labels shorter than this are never flagged.
    pub min_len: usize,
    /// Share of benign tuning labels (of at least `min_len` characters) allowed above the
    /// threshold.
    pub target_fpr: f64,
    /// Dirichlet smoothing strength.
    pub smoothing: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            min_len: 6,
            target_fpr: 0.01,
            smoothing: 4.0,
        }
    }
}

/// A trained model, as the text of a model file, with figures about its training.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainedModel {
    /// The model file (see [`DgaModel::parse`]).
    pub model_text: String,
    /// The chosen threshold, in bits.
    pub threshold: f32,
    /// Distinct registrable labels counted.
    pub labels: usize,
    /// Distinct trigrams seen.
    pub distinct_trigrams: usize,
}

/// Training could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// `target_fpr` is outside `[0, 1)`.
    #[error("target_fpr must be in [0, 1), got {0}")]
    TargetFpr(f64),
    /// The tuning split has no label long enough to be scored.
    #[error("no benign tuning labels of at least {0} characters")]
    NoTuningData(usize),
}

/// Trains the model from the text of [`BENIGN_TRAIN`]: trigram counts over the distinct
/// registrable labels of the train split, threshold on the tuning split. Deterministic: the
/// same input gives the same file, byte for byte.
pub fn train(benign_text: &str, options: TrainOptions) -> Result<TrainedModel, TrainError> {
    let TrainOptions {
        min_len,
        target_fpr,
        smoothing,
    } = options;
    if !(0.0..1.0).contains(&target_fpr) {
        return Err(TrainError::TargetFpr(target_fpr));
    }
    let benign = crate::corpus::entries(benign_text);
    let mut counts = TrigramCounts::default();
    let mut seen = std::collections::HashSet::new();
    for e in benign.iter().filter(|e| split_of(e.value) == Split::Train) {
        // Count each registrable label once: popular brands appear under many TLDs.
        if let Some(label) = registrable_label(e.value).filter(|l| seen.insert(*l)) {
            counts.add(label);
        }
    }
    let provisional = DgaModel::from_counts(
        &counts,
        DgaParams {
            threshold: f32::INFINITY,
            min_len,
            smoothing,
        },
    );
    let mut tune: Vec<f32> = benign
        .iter()
        .filter(|e| split_of(e.value) == Split::Tune)
        .filter_map(|e| registrable_label(e.value))
        .filter(|l| l.len() >= min_len)
        .map(|l| provisional.score_label(l))
        .collect();
    tune.sort_by(f32::total_cmp);
    let (Some(&lowest), Some(&highest)) = (tune.first(), tune.last()) else {
        return Err(TrainError::NoTuningData(min_len));
    };
    // The threshold sits just above the score of the highest tuning label that must stay
    // below it, so at most `allowed` labels reach it.
    let allowed = (tune.len() as f64 * target_fpr).floor() as usize;
    let keep_below = tune.len() - allowed;
    let threshold = match keep_below.checked_sub(1).and_then(|i| tune.get(i)) {
        Some(&s) => s + 1e-3,
        None => lowest - 1e-3,
    }
    .min(highest + 1e-3);
    let params = DgaParams {
        threshold,
        min_len,
        smoothing,
    };
    let header = vec![
        "Vigil DGA model: character trigram counts of benign registrable labels.".to_owned(),
        format!(
            "Trained by: cargo run -p vigil-detection --release --bin dga-model -- train --min-len {min_len} --target-fpr {target_fpr} --smoothing {smoothing}"
        ),
        format!(
            "Data: {BENIGN_TRAIN} (OpenDNS public-domain-lists @ 59bc34f845, public domain), train split (FNV-1a(name) % 10 in 0..=6): {} distinct labels.",
            seen.len()
        ),
        format!(
            "Threshold: {threshold} bits; {allowed} of {} tuning-split labels (>= {min_len} chars) reach it (target FPR {target_fpr}).",
            tune.len()
        ),
        "No GPL or unlicensed data was used: dga-samples.txt and benign-top-domains.txt are for evaluation only.".to_owned(),
    ];
    Ok(TrainedModel {
        model_text: DgaModel::write(&counts, params, &header),
        threshold,
        labels: seen.len(),
        distinct_trigrams: counts.distinct(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy_model() -> DgaModel {
        let mut counts = TrigramCounts::default();
        for word in [
            "google",
            "facebook",
            "amazon",
            "wikipedia",
            "microsoft",
            "apple",
            "netflix",
            "twitter",
            "linkedin",
            "instagram",
            "weather",
            "shopping",
            "newspaper",
            "travel",
        ] {
            counts.add(word);
        }
        DgaModel::from_counts(
            &counts,
            DgaParams {
                threshold: 10.0,
                min_len: 8,
                smoothing: 2.0,
            },
        )
    }

    #[test]
    fn registrable_label_skips_suffixes() {
        assert_eq!(registrable_label("www.example.co.uk."), Some("example"));
        assert_eq!(registrable_label("a.b.example.com"), Some("example"));
        assert_eq!(registrable_label("co.uk"), Some("co"));
        assert_eq!(registrable_label("com"), None);
        assert_eq!(registrable_label(""), None);
    }

    #[test]
    fn random_names_score_higher_than_words() {
        let model = toy_model();
        let random = model.score("xjo4vk9bk1f19hxz.net");
        let word = model.score("www.facebook.com");
        assert!(random > word + 20.0, "random {random} vs word {word}");
        assert!(model.is_dga("xjo4vk9bk1f19hxz.net"));
        assert!(!model.is_dga("facebook.com"));
        // Short labels are never flagged, however odd.
        assert!(!model.is_dga("xq7z.com"));
    }

    #[test]
    fn write_then_parse_gives_the_same_scores() {
        let mut counts = TrigramCounts::default();
        counts.add("example");
        counts.add("under_score");
        let params = DgaParams {
            threshold: 3.5,
            min_len: 7,
            smoothing: 4.0,
        };
        let text = DgaModel::write(&counts, params, &["test".to_owned()]);
        let parsed = DgaModel::parse(&text, "mem").unwrap();
        let direct = DgaModel::from_counts(&counts, params);
        assert_eq!(parsed.params(), params);
        for name in ["example.com", "zzzz.org", "under_score.net"] {
            assert_eq!(parsed.score(name), direct.score(name));
        }
    }

    #[test]
    fn bad_model_files_name_the_line() {
        let err = DgaModel::parse("threshold 3\nmin_len x\n", "m.txt").unwrap_err();
        assert_eq!(
            err,
            DgaModelError::Syntax {
                origin: "m.txt".into(),
                line: 2,
                message: "min_len: invalid digit found in string".into()
            }
        );
        assert!(matches!(
            DgaModel::parse("threshold 3\nmin_len 5\n", "m.txt"),
            Err(DgaModelError::Missing {
                field: "smoothing",
                ..
            })
        ));
        assert!(DgaModel::parse("t ab 3\n", "m").is_err());
    }

    #[test]
    fn splits_are_stable_and_roughly_proportional() {
        assert_eq!(split_of("Example.com"), split_of("example.com"));
        let names: Vec<String> = (0..10_000).map(|i| format!("name{i}.example")).collect();
        let test = names.iter().filter(|n| split_of(n) == Split::Test).count();
        assert!((1_500..2_500).contains(&test), "{test}");
    }

    #[test]
    fn builtin_model_parses() {
        let model = DgaModel::builtin().unwrap();
        assert!(model.params().threshold > 0.0);
        assert!(model.is_dga("xjo4vk9bk1f19hxz.net"));
        assert!(!model.is_dga("wikipedia.org"));
    }
}
