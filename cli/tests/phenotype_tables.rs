//! Phenotype tables: the simulated cohort's clinical table answers the reference cohorts of
//! `../shared/testdata/reference_queries/` (written from the same table by the simulator's
//! authors), unknown sample IDs are refused with a count and leave the store unchanged, and a
//! re-ingest replaces the table in one commit.

use std::path::PathBuf;

use crate::oracle_support::*;

fn ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = tsv_rows(text).into_iter().map(|r| r[0].clone()).collect();
    ids.sort();
    ids
}

fn reference_ids(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(shared_dir().join("testdata/reference_queries").join(name))
        .unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn version(store: &str) -> String {
    let info = cohortdb(&["info", "--store", store]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("version\t"))
        .unwrap()
        .to_string()
}

#[test]
fn clinical_cohorts_equal_the_reference_lists() {
    let prefix = sim_prefix();
    let (_dir, store) = sim_store(true);
    let query = |sql: &str| ids(&cohortdb(&["query", "--store", &store, sql]).unwrap());
    let women = query(
        "SELECT sample_id FROM phenotypes WHERE sex = 'F' AND age BETWEEN 50 AND 60 AND bmi >= 30",
    );
    assert_eq!(women.len(), 621);
    assert_eq!(women, reference_ids("female_50to60_bmi30.txt"));
    assert_eq!(
        query("SELECT sample_id FROM phenotypes WHERE case_control = 1"),
        reference_ids("cases.txt")
    );
    // Cohorts defined by phenotype predicates give bcftools' case/control counts (Q3).
    let q3 = std::fs::read_to_string(
        shared_dir().join("testdata/reference_queries/q3_bcftools_case_control_counts.tsv"),
    )
    .unwrap();
    for (predicate, first) in [("case_control = 1", 4), ("case_control = 0", 8)] {
        let mut expected = Vec::new();
        for line in q3.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            for (i, alt) in f[3].split(',').enumerate() {
                let at = |c: usize| f[c].split(',').nth(i).unwrap().parse::<i64>().unwrap();
                let an: i64 = f[first + 1].parse().unwrap();
                expected.push(format!(
                    "{} {} {} {alt} {} {an} {} {}",
                    f[0],
                    f[1],
                    f[2],
                    at(first),
                    at(first + 2),
                    at(first + 3) / 2
                ));
            }
        }
        let text = cohortdb(&[
            "af",
            "--store",
            &store,
            "-r",
            "chr20:20500001-20600000",
            "--cohort",
            predicate,
        ])
        .unwrap();
        let got: Vec<String> = tsv_rows(&text)
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {} {} {} {}",
                    r[0], r[1], r[3], r[4], r[5], r[6], r[8], r[9]
                )
            })
            .collect();
        expected.sort();
        let mut got = got;
        got.sort();
        assert_eq!(got.len(), 1496, "{predicate}");
        assert_eq!(got, expected, "{predicate}");
    }
    // A named cohort is one commit and answers as the ID list it stands for.
    let predicate = "sex = 'F' AND age BETWEEN 50 AND 60 AND bmi >= 30";
    cohortdb(&[
        "cohort",
        "save",
        "--store",
        &store,
        "women_50s",
        "--where",
        predicate,
    ])
    .unwrap();
    let list = cohortdb(&["cohort", "list", "--store", &store]).unwrap();
    assert!(list.contains("women_50s\t621\t"), "{list}");
    let women_file = shared_dir()
        .join("testdata/reference_queries/female_50to60_bmi30.txt")
        .display()
        .to_string();
    let af = |selection: &[&str]| {
        let mut args = vec!["af", "--store", &store, "-r", "chr20:20500001-20600000"];
        args.extend(selection);
        cohortdb(&args).unwrap()
    };
    assert_eq!(af(&["--cohort", "@women_50s"]), af(&["-S", &women_file]));
    // A list saved under a name answers as the list; `cohort list` says what it holds.
    cohortdb(&[
        "cohort",
        "save",
        "--store",
        &store,
        "women_list",
        "-S",
        &women_file,
    ])
    .unwrap();
    assert_eq!(af(&["--cohort", "@women_list"]), af(&["-S", &women_file]));
    let list = cohortdb(&["cohort", "list", "--store", &store]).unwrap();
    assert!(list.contains("women_list\t621\t621 sample IDs\n"), "{list}");
    // A list with an unknown ID, an empty list or an excluding list is refused, nothing saved.
    let before_lists = version(&store);
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.txt").display().to_string();
    std::fs::write(
        &unknown,
        std::fs::read_to_string(&women_file).unwrap() + "no_such_id\n",
    )
    .unwrap();
    let err = cohortdb(&["cohort", "save", "--store", &store, "l2", "-S", &unknown]).unwrap_err();
    assert!(err.contains("no_such_id"), "{err}");
    let empty = dir.path().join("empty.txt").display().to_string();
    std::fs::write(&empty, "").unwrap();
    let err = cohortdb(&["cohort", "save", "--store", &store, "l2", "-S", &empty]).unwrap_err();
    assert!(err.contains("empty"), "{err}");
    let err = cohortdb(&[
        "cohort",
        "save",
        "--store",
        &store,
        "l2",
        "-S",
        &format!("^{women_file}"),
    ])
    .unwrap_err();
    assert!(err.contains("no leading ^"), "{err}");
    assert_eq!(
        version(&store),
        before_lists,
        "a refused list must not commit"
    );
    let before_bad = version(&store);
    assert!(
        cohortdb(&[
            "cohort",
            "save",
            "--store",
            &store,
            "bad",
            "--where",
            "nosuch = 1"
        ])
        .is_err()
    );
    assert!(
        cohortdb(&["af", "--store", &store, "--cohort", "@nope"])
            .unwrap_err()
            .contains("nope")
    );
    assert_eq!(
        version(&store),
        before_bad,
        "a refused cohort must not commit"
    );
    // Replacing the table is one more commit, and the table is read from the new file.
    let before = version(&store);
    cohortdb(&[
        "ingest",
        "phenotypes",
        "--store",
        &store,
        "--types",
        "age=float",
        &format!("{prefix}.pheno.tsv"),
    ])
    .unwrap();
    assert_eq!(
        version(&store).parse::<u64>().unwrap(),
        before.parse::<u64>().unwrap() + 1
    );
    let types = cohortdb(&[
        "query", "--store", &store,
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'phenotypes' AND column_name = 'age'",
    ])
    .unwrap();
    assert!(types.contains("Float64"), "{types}");
}

#[test]
fn unknown_sample_ids_are_refused_with_a_count_or_dropped_on_request() {
    let (_dir, store) = new_store();
    let vcf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/slt/cohort.vcf");
    cohortdb(&["ingest", "vcf", "--store", &store, vcf.to_str().unwrap()]).unwrap();
    let csv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/phenotypes/visits_with_unknown.csv")
        .display()
        .to_string();
    let before = version(&store);
    let err = cohortdb(&[
        "ingest",
        "phenotypes",
        "--store",
        &store,
        "--table",
        "visits",
        "--key",
        "participant",
        &csv,
    ])
    .unwrap_err();
    assert!(
        err.contains("2 rows") && err.contains("NOPE1, NOPE2"),
        "{err}"
    );
    assert_eq!(version(&store), before, "a refused table must not commit");

    cohortdb(&[
        "ingest",
        "phenotypes",
        "--store",
        &store,
        "--table",
        "visits",
        "--key",
        "participant",
        "--drop-unknown",
        &csv,
    ])
    .unwrap();
    let rows = cohortdb(&[
        "query",
        "--store",
        &store,
        "SELECT sample_id, visit, note FROM visits ORDER BY sample_idx",
    ])
    .unwrap();
    assert_eq!(
        rows,
        "sample_id\tvisit\tnote\nS1\t2020-01-05\tfirst, baseline\nS2\t2020-02-10\tsaid \"fine\"\n"
    );
}
