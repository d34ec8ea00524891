//! A carriers answer in pages (`cohortdb carriers --page-size`, `--page-token`): the pages
//! together are the whole answer, whose rows bcftools counts; a token of an older store
//! version is refused with what to do.

use crate::oracle_support::{cohortdb, run, sh, sim_prefix, sim_store};

#[test]
fn pages_make_the_whole_answer_and_a_stale_token_is_refused() {
    let (_dir, store) = sim_store(false);
    // The site with the most ALT calls.
    let variant = cohortdb(&[
        "query",
        "--store",
        &store,
        "SELECT contig || ':' || CAST(pos AS VARCHAR) AS v FROM variants \
         ORDER BY n_het + n_hom_alt DESC LIMIT 1",
    ])
    .unwrap();
    let variant = variant.lines().nth(1).unwrap().to_string();
    let whole = cohortdb(&["carriers", "--store", &store, "--variant", &variant]).unwrap();
    let rows: Vec<&str> = whole.lines().skip(1).collect();
    // bcftools: one row per sample and ALT it carries.
    let (contig, pos) = variant.split_once(':').unwrap();
    let want = sh(&format!(
        "bcftools norm --no-version -m- -r {contig}:{pos}-{pos} {}.vcf.gz 2>/dev/null \
         | bcftools query -i 'POS={pos} && GT=\"alt\"' -f '[%SAMPLE\\n]' | wc -l",
        sim_prefix()
    ))
    .unwrap();
    assert_eq!(
        rows.len(),
        want.trim().parse::<usize>().unwrap(),
        "{variant}"
    );
    assert!(rows.len() > 1000, "{variant}: {} rows", rows.len());

    // Followed page by page, the same text.
    let paged = cohortdb(&[
        "carriers",
        "--store",
        &store,
        "--variant",
        &variant,
        "--page-size",
        "333",
    ])
    .unwrap();
    assert_eq!(paged, whole);

    // One page at a time: the first 100 rows and a token; the token gives the next 100.
    let page = |token: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cohortdb"))
            .args(["carriers", "--store", &store, "--variant", &variant])
            .args(["--page-size", "100", "--page-token", token])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (ok, first, said) = page("");
    assert!(ok, "{said}");
    assert_eq!(first.lines().skip(1).collect::<Vec<_>>(), rows[..100]);
    let token = said
        .trim()
        .strip_prefix("next page token: ")
        .unwrap()
        .to_string();
    let (ok, second, said) = page(&token);
    assert!(ok, "{said}");
    assert_eq!(second.lines().skip(1).collect::<Vec<_>>(), rows[100..200]);

    // A token continues its own request only, and only at its store version.
    let first_sample = rows[0].split('\t').nth(5).unwrap();
    let others = format!("^{first_sample}");
    let other = run(
        env!("CARGO_BIN_EXE_cohortdb"),
        &[
            "carriers",
            "--store",
            &store,
            "--variant",
            &variant,
            "-s",
            &others,
            "--page-size",
            "100",
            "--page-token",
            &token,
        ],
    )
    .unwrap_err();
    assert!(other.contains("continues another request"), "{other}");
    cohortdb(&["admin", "withdraw", "--store", &store, first_sample]).unwrap();
    let (ok, _, said) = page(&token);
    assert!(
        !ok && said.contains("ask again from the first page"),
        "{said}"
    );
}
