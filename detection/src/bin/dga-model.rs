//! Trains and evaluates the DGA model from the public lists in `shared/threat-intel`.
//!
//! `dga-model train` writes `detection/data/dga-model.txt`; `dga-model eval` prints precision
//! and recall on the held-apart sample. Both are deterministic: the split is a hash of the name.

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use vigil_detection::{
    DgaModel,
    corpus::entries,
    dga::{self, Split, TrainOptions, registrable_label, split_of},
};

/// Train or evaluate Vigil's DGA model.
#[derive(Parser)]
struct Cli {
    /// The curated lists (shared/threat-intel of the repository's parent folder).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/threat-intel"))]
    shared: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Count trigrams on the benign training split and pick the threshold on the tuning split.
    Train {
        /// Where to write the model.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dga-model.txt"))]
        out: PathBuf,
        /// Labels shorter than this are never flagged.
        #[arg(long, default_value_t = 6)]
        min_len: usize,
        /// Target false-positive rate on the benign tuning split (fraction).
        #[arg(long, default_value_t = 0.01)]
        target_fpr: f64,
        /// Dirichlet smoothing strength.
        #[arg(long, default_value_t = 4.0)]
        smoothing: f32,
    },
    /// Precision and recall on the held-apart sample.
    Eval {
        /// The model to evaluate.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dga-model.txt"))]
        model: PathBuf,
    },
}

use vigil_detection::dga::BENIGN_TRAIN;
const BENIGN_EVAL: &str = "benign-top-domains.txt";
const DGA_GPL: &str = "dga-samples.txt";
const DGA_MIT: &str = "dga-samples-360netlab.txt";

fn read(shared: &Path, file: &str) -> Result<String> {
    let path = shared.join(file);
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (the curated lists are expected in {}; pass --shared)",
            path.display(),
            shared.display()
        )
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train {
            out,
            min_len,
            target_fpr,
            smoothing,
        } => train(&cli.shared, &out, min_len, target_fpr, smoothing),
        Command::Eval { model } => eval(&cli.shared, &model),
    }
}

fn train(shared: &Path, out: &Path, min_len: usize, target_fpr: f64, smoothing: f32) -> Result<()> {
    let text = read(shared, BENIGN_TRAIN)?;
    let trained = dga::train(
        &text,
        TrainOptions {
            min_len,
            target_fpr,
            smoothing,
        },
    )?;
    std::fs::write(out, &trained.model_text)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {}: {} distinct trigrams from {} labels, threshold {:.4} bits, min_len {min_len}",
        out.display(),
        trained.distinct_trigrams,
        trained.labels,
        trained.threshold
    );
    Ok(())
}

#[derive(Default)]
struct Tally {
    total: usize,
    flagged: usize,
}

impl Tally {
    fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.flagged as f64 / self.total as f64
        }
    }
}

fn eval(shared: &Path, model_path: &Path) -> Result<()> {
    let model_text = std::fs::read_to_string(model_path)
        .with_context(|| format!("cannot read {}", model_path.display()))?;
    let model = DgaModel::parse(&model_text, &model_path.display().to_string())?;
    let params = model.params();

    let opendns_text = read(shared, BENIGN_TRAIN)?;
    let opendns = entries(&opendns_text);
    let used: HashSet<&str> = opendns
        .iter()
        .filter(|e| split_of(e.value) != Split::Test)
        .map(|e| e.value)
        .collect();
    let top_text = read(shared, BENIGN_EVAL)?;
    let gpl_text = read(shared, DGA_GPL)?;
    let mit_text = read(shared, DGA_MIT)?;

    let mut negatives: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut negative_scores = Vec::new();
    for e in opendns.iter().filter(|e| split_of(e.value) == Split::Test) {
        let t = negatives.entry("opendns test split (20%)").or_default();
        t.total += 1;
        t.flagged += usize::from(model.is_dga(e.value));
        negative_scores.push(score_for_sweep(&model, e.value));
    }
    let mut top_flagged = Vec::new();
    for e in entries(&top_text)
        .iter()
        .filter(|e| !used.contains(e.value))
    {
        let t = negatives
            .entry("benign-top-100k (minus train/tune names)")
            .or_default();
        t.total += 1;
        if model.is_dga(e.value) {
            t.flagged += 1;
            if top_flagged.len() < 15 {
                top_flagged.push(e.value.to_owned());
            }
        }
        negative_scores.push(score_for_sweep(&model, e.value));
    }

    let mut families: BTreeMap<String, Tally> = BTreeMap::new();
    let mut positive_scores = Vec::new();
    for (source, text) in [("baderj", &gpl_text), ("360netlab", &mit_text)] {
        for e in entries(text) {
            let family = e.section.split_whitespace().next().unwrap_or("?");
            let t = families.entry(format!("{source}/{family}")).or_default();
            t.total += 1;
            t.flagged += usize::from(model.is_dga(e.value));
            positive_scores.push(score_for_sweep(&model, e.value));
        }
    }

    let tp: usize = families.values().map(|t| t.flagged).sum();
    let positives: usize = families.values().map(|t| t.total).sum();
    let fp: usize = negatives.values().map(|t| t.flagged).sum();
    let negatives_total: usize = negatives.values().map(|t| t.total).sum();
    let recall = tp as f64 / positives as f64;
    let fpr = fp as f64 / negatives_total as f64;
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    // Macro recall: every family counts the same, whatever its sample size.
    let macro_recall = families.values().map(Tally::rate).sum::<f64>() / families.len() as f64;

    println!(
        "model {} (threshold {:.4} bits, min_len {})",
        model_path.display(),
        params.threshold,
        params.min_len
    );
    println!("\nnegatives (benign, never trained on):");
    for (name, t) in &negatives {
        println!(
            "  {name:<45} {:>7} flagged {:>5} FPR {:.3}%",
            t.total,
            t.flagged,
            100.0 * t.rate()
        );
    }
    println!("\npositives by family (never trained on):");
    for (name, t) in &families {
        println!(
            "  {name:<45} {:>7} flagged {:>7} recall {:.1}%",
            t.total,
            t.flagged,
            100.0 * t.rate()
        );
    }
    println!(
        "\nconfusion: TP {tp} FN {} FP {fp} TN {}",
        positives - tp,
        negatives_total - fp
    );
    println!(
        "precision {:.2}% (at this sample's mix: {positives} DGA vs {negatives_total} benign)",
        100.0 * precision
    );
    println!(
        "precision at 1:1 mix {:.2}%",
        100.0 * recall / (recall + fpr).max(f64::MIN_POSITIVE)
    );
    println!(
        "recall {:.2}% (micro), {:.2}% (macro over {} families)",
        100.0 * recall,
        100.0 * macro_recall,
        families.len()
    );
    println!("false-positive rate {:.3}%", 100.0 * fpr);
    println!(
        "\nbenign names flagged (first {}): {}",
        top_flagged.len(),
        top_flagged.join(", ")
    );

    println!(
        "\nthreshold sweep (min_len {}): threshold, FPR, recall",
        params.min_len
    );
    for delta in [-10.0f32, -5.0, -2.5, 0.0, 2.5, 5.0, 10.0] {
        let threshold = params.threshold + delta;
        let rate = |scores: &[Option<f32>]| {
            scores
                .iter()
                .filter(|s| s.is_some_and(|s| s >= threshold))
                .count() as f64
                / scores.len().max(1) as f64
        };
        println!(
            "  {threshold:.3}  {:.3}%  {:.2}%",
            100.0 * rate(&negative_scores),
            100.0 * rate(&positive_scores)
        );
    }
    Ok(())
}

/// The score a name would be judged on, or `None` when its label is too short to be flagged.
fn score_for_sweep(model: &DgaModel, domain: &str) -> Option<f32> {
    registrable_label(domain)
        .filter(|l| l.len() >= model.params().min_len)
        .map(|l| model.score_label(l))
}
