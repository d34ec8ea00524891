//! Crash safety: `kill -9` of `cohortdb ingest` at random moments, 50 times. After each kill
//! the store opens at the old version or the new one, with all of that version's samples and
//! readable fragments; `vacuum` then removes what the killed writers left behind.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::oracle_support::*;

const TRIALS: usize = 50;

/// `store`'s version and sample count, from `cohortdb info`.
fn version_and_samples(store: &str) -> (u64, u64) {
    let info = cohortdb(&["info", "--store", store]).unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}\t")))
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("version"), field("samples"))
}

/// Files of the store directory outside `_log/` and `_audit/`, as object_store lists them:
/// without the staging files (`NAME#N`) of a local put that a kill cut short, which no
/// object_store call can see or delete (see docs/store-format.md).
fn data_files(store: &str) -> usize {
    let mut dirs = vec![std::path::PathBuf::from(store)];
    let mut n = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "_log" && name != "_audit" {
                    dirs.push(path);
                }
            } else if !name.contains('#') {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn kill_9_leaves_the_old_or_the_new_version() {
    let (tmp, store) = new_store();
    let batch = shared_dir()
        .join("testdata/opencga/1000g_batches")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .find(|p| p.contains("/1-500."))
        .unwrap();
    // 3,253 records of 500 samples; each trial renames the samples, so it adds new ones.
    let text = run("bcftools", &["view", "--no-version", "-Ov", &batch]).unwrap();
    let (header, body) = text.split_at(text.find("#CHROM").unwrap());
    let (chrom_line, records) = body.split_at(body.find('\n').unwrap());
    let input = |trial: usize| {
        let mut fields: Vec<String> = chrom_line.split('\t').map(str::to_string).collect();
        for f in fields.iter_mut().skip(9) {
            *f = format!("T{trial}_{f}");
        }
        let path = tmp.path().join("trial.vcf");
        std::fs::write(&path, format!("{header}{}{records}", fields.join("\t"))).unwrap();
        path.display().to_string()
    };

    // An untouched ingest sets the base version and the time an ingest takes.
    let started = Instant::now();
    cohortdb(&["ingest", "vcf", "--store", &store, &input(0)]).unwrap();
    let full = started.elapsed();
    let (mut version, mut samples) = version_and_samples(&store);
    assert_eq!((version, samples), (1, 500));

    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut killed_before, mut committed) = (0, 0);
    for trial in 1..=TRIALS {
        let file = input(trial);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = full.mul_f64(1.2 * (seed % 1000) as f64 / 1000.0);
        let mut child = Command::new(env!("CARGO_BIN_EXE_cohortdb"))
            .args(["ingest", "vcf", "--store", &store, &file])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        let (now, now_samples) = version_and_samples(&store);
        if now == version {
            assert_eq!(
                now_samples, samples,
                "trial {trial}: old version, old samples"
            );
            killed_before += 1;
        } else {
            assert_eq!(now, version + 1, "trial {trial}: at most one commit");
            assert_eq!(now_samples, samples + 500, "trial {trial}: the whole batch");
            committed += 1;
        }
        (version, samples) = (now, now_samples);
        // Every fragment of the version is there and readable.
        let sum = cohortdb(&["query", "--store", &store, "SELECT sum(an) FROM variants"]).unwrap();
        let an: u64 = tsv_rows(&sum)[0][0].parse().unwrap();
        assert!(an > 0, "trial {trial}");
    }
    assert!(killed_before > 0, "no ingest was killed before its commit");

    // Vacuum removes the leftovers; what stays is what the newest version needs.
    let left = data_files(&store);
    let vacuum = cohortdb(&["admin", "vacuum", "--store", &store, "--older-than", "0s"]).unwrap();
    let after = data_files(&store);
    let again = cohortdb(&["admin", "vacuum", "--store", &store, "--older-than", "0s"]).unwrap();
    assert!(
        again.starts_with("deleted 0 removed file(s) and 0 never-committed"),
        "{again}"
    );
    assert!(again.ends_with(&format!("kept {after}\n")), "{again}");
    eprintln!(
        "{TRIALS} kills: {killed_before} before the commit, {committed} after; {left} data \
         files before vacuum, {after} after ({})",
        vacuum.trim()
    );
    assert_eq!(version_and_samples(&store), (version, samples));
}
