//! Shared helpers of the oracle tests: locating `../shared`, running commands, parsing TSV.

use std::path::PathBuf;
use std::process::Command;

/// The shared test data folder: `$COHORTDB_SHARED` or `../shared` beside the repository.
/// Panics (fails the test) when it is missing: these tests never pass by skipping.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("COHORTDB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.join("testdata").is_dir(),
        "shared test data not found at {} (set COHORTDB_SHARED)",
        dir.display()
    );
    dir
}

/// Runs `program args...`, returning stdout; `Err(stderr)` on failure.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e} (is it installed?)"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Runs a shell pipeline.
pub fn sh(script: &str) -> Result<String, String> {
    run("bash", &["-o", "pipefail", "-c", script])
}

/// Runs the cohortdb binary.
pub fn cohortdb(args: &[&str]) -> Result<String, String> {
    run(env!("CARGO_BIN_EXE_cohortdb"), args)
}

/// `export -O v` of `store` (in `region`, else everything) as text, without the header line
/// naming cohortdb's version and the store's, so that two stores' exports compare.
pub fn exported_vcf(store: &str, region: Option<&str>) -> String {
    let mut args = vec!["export", "--store", store, "-O", "v", "-o", "-"];
    if let Some(region) = region {
        args.extend(["-r", region]);
    }
    cohortdb(&args)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("##source=cohortdb"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fresh store directory.
pub fn new_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store").display().to_string();
    (dir, store)
}

/// Rows of a TSV text without its header line.
pub fn tsv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Path prefix of the simulated N=10,000 cohort (seed 2) that `scripts/test.sh` generates into
/// `.cache/sim/` (or `$COHORTDB_SIM_DIR`): `<prefix>.vcf.gz`, `<prefix>.pheno.tsv`. Fails,
/// naming the command that makes it, when it is missing.
pub fn sim_prefix() -> String {
    let dir = std::env::var_os("COHORTDB_SIM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/sim"));
    let prefix = dir.join("sim_N10000_L1Mb");
    assert!(
        dir.join("sim_N10000_L1Mb.vcf.gz").is_file(),
        "simulated cohort not found under {}: run scripts/test.sh, or from ../shared/testdata: \
         python3 ../sim/simulate.py -n 10000 -L 1000000 -s 2 --no-trees -o {}",
        dir.display(),
        prefix.display()
    );
    prefix.display().to_string()
}

/// A new store holding the simulated cohort's genotypes and, with `phenotypes`, its phenotype
/// table (as `phenotypes`).
pub fn sim_store(phenotypes: bool) -> (tempfile::TempDir, String) {
    let prefix = sim_prefix();
    let (dir, store) = new_store();
    cohortdb(&[
        "ingest",
        "vcf",
        "--store",
        &store,
        &format!("{prefix}.vcf.gz"),
    ])
    .expect("ingest");
    if phenotypes {
        let table = format!("{prefix}.pheno.tsv");
        cohortdb(&["ingest", "phenotypes", "--store", &store, &table]).expect("phenotypes");
    }
    (dir, store)
}

/// Every VCF/BCF under `curated/edge_cases` (BAM excluded), sorted: the foundation's oracle set.
pub fn edge_case_files() -> Vec<String> {
    let root = shared_dir().join("testdata/curated/edge_cases");
    let mut files = Vec::new();
    for category in std::fs::read_dir(&root).expect("edge_cases") {
        let category = category.expect("entry").path();
        if category.file_name().is_some_and(|n| n == "bam") {
            continue;
        }
        for f in std::fs::read_dir(&category).expect("category") {
            let p = f.expect("entry").path().display().to_string();
            if [".vcf", ".vcf.gz", ".bcf", ".gvcf", ".vcf.bgz"]
                .iter()
                .any(|s| p.ends_with(s))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Starts every command at once (standard error captured) and waits for all; panics naming
/// `label` and the first failure's standard error.
pub fn run_all_at_once(commands: Vec<std::process::Command>, label: &str) {
    use std::process::Stdio;
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Files of `store` that still hold a withdrawn participant: their ID in any text value, or
/// their `sample_idx` in any genotype bitmap. Parquet files are decoded (their pages are
/// compressed); every other file is read as text.
pub fn scan_store(store: &str, withdrawn: &[String], idx: &[String]) -> usize {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::DataType;
    let idx: roaring::RoaringBitmap = idx.iter().map(|i| i.parse::<u32>().unwrap()).collect();
    let mut files = vec![std::path::PathBuf::from(store)];
    let mut holding = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut found = false;
        if path.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&path).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
            for batch in reader {
                for column in batch.unwrap().columns() {
                    let text = datafusion::arrow::compute::cast(column, &DataType::Utf8);
                    if matches!(column.data_type(), DataType::Utf8 | DataType::Utf8View) {
                        let text = text.unwrap();
                        found |= text
                            .as_string::<i32>()
                            .iter()
                            .flatten()
                            .any(|v| withdrawn.iter().any(|w| w == v));
                    } else if column.data_type() == &DataType::Binary {
                        let binary = column.as_binary::<i32>();
                        found |= (0..binary.len()).filter(|&r| binary.is_valid(r)).any(|r| {
                            cohortdb_store::genotype_bitmaps::deserialize_bitmap(binary.value(r))
                                .is_some_and(|b| !b.is_disjoint(&idx))
                        });
                    }
                }
            }
        } else {
            let text = String::from_utf8_lossy(&bytes);
            found = withdrawn.iter().any(|w| text.contains(w.as_str()));
        }
        holding += usize::from(found);
    }
    holding
}
