//! The aggregate tier tried as an attacker would, on the simulated N=10,000 cohort: each
//! attack of issue 13 (and the known ones beyond it) against an aggregate engine with the
//! default noise, k and budget (one project per attack). Every attack must be refused or do no
//! better than guessing from the cohort's allele frequencies. The report (stderr, `--no-capture`)
//! gives per attack what was answered, the reconstruction accuracy against chance (or the
//! membership test's power at 5 % false positives) and the budget spent; the utility
//! section gives the error the noise adds to allele frequencies. Over gRPC and Flight SQL the
//! same engine answers (serving.rs).

use crate::support::disclosure_harness;

use std::collections::BTreeMap;

use cohortdb_engine::policy::disclosure_control::DEFAULT_NOISE_SD as SD;
use cohortdb_engine::{Cohort, CohortSpec, EngineError, Region};
use disclosure_harness::*;
use roaring::RoaringBitmap;

/// How far above chance a reconstruction may come before the test fails: sampling error over
/// a few hundred sites.
const SLACK: f64 = 0.05;

/// A SQL string literal of `text`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Fails an attack whose reconstruction beats chance by more than [`SLACK`].
fn check(failures: &mut Vec<String>, what: &str, r: &Reconstruction) {
    if r.accuracy > r.chance + SLACK {
        failures.push(format!("{what}: {r:?}"));
    }
}

const JOIN: &str = "a.pos = b.pos AND a.ref = b.ref AND a.alt = b.alt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_tier_attacks() {
    let f = Fixture::new().await;
    let mut failures: Vec<String> = Vec::new();
    eprintln!("| attack | outcome | rho spent |\n|---|---|---|");
    let r = quoted(REGION);
    let (target, t) = f.unique_target(|p| p.age < 55);
    let truth = f.dosages(&target).await;

    // 1. Three cohorts in one request: a + b - c is the target's dosage.
    let (engine, control) = f.aggregate("three-cohorts", 2.0).await;
    let query = format!(
        "SELECT a.pos, a.ref, a.alt, a.ac + b.ac - c.ac AS ac, a.an + b.an - c.an AS an, \
         a.n_het + b.n_het - c.n_het AS n_het \
         FROM allele_frequencies({r}, 'age < 55') a \
         JOIN allele_frequencies({r}, {}) b ON {JOIN} \
         JOIN allele_frequencies({r}, '') c ON a.pos = c.pos AND a.ref = c.ref AND a.alt = c.alt",
        quoted(&format!("age >= 55 OR ({t})"))
    );
    let estimates = estimates_of(&sql(&engine, &query).await.expect("answered"), "", 1.0);
    let result = score(&f, &estimates, SD * 3f64.sqrt(), &truth);
    report(
        "1 three cohorts, one request",
        &format!("answered; {result:?}"),
        &control,
    );
    check(&mut failures, "three cohorts", &result);
    // The same through case_control and the everyone cohort.
    let query = format!(
        "SELECT a.pos, a.ref, a.alt, a.ac_cases + a.ac_controls - b.ac AS ac \
         FROM case_control({r}, 'age < 55', {}) a JOIN allele_frequencies({r}, '') b ON {JOIN}",
        quoted(&format!("age >= 55 OR ({t})"))
    );
    let estimates = estimates_of(&sql(&engine, &query).await.expect("answered"), "", 1.0);
    let result = score(&f, &estimates, SD * 3f64.sqrt(), &truth);
    report(
        "1b case_control + everyone",
        &format!("answered; {result:?}"),
        &control,
    );
    check(&mut failures, "case_control three cohorts", &result);

    // 2. Two admitted cohorts whose difference is small: everyone and those with a BMI.
    let (engine, control) = f.aggregate("small-difference", 2.0).await;
    let batches = sql(
        &engine,
        &format!("SELECT * FROM case_control({r}, '', 'bmi IS NOT NULL')"),
    )
    .await
    .expect("answered");
    let cases = rows_with(&batches, "_cases");
    let controls = rows_with(&batches, "_controls");
    let no_bmi: RoaringBitmap = f
        .people
        .iter()
        .filter(|p| p.bmi.is_none())
        .map(|p| p.idx)
        .collect();
    let group = f
        .admin
        .allele_frequencies(&f.regions, &Cohort::new(no_bmi.clone()))
        .await
        .unwrap();
    let group = rows(&group);
    let (mut derived_exact, mut guess_exact, mut small) = (0usize, 0usize, 0usize);
    for (site, counts) in &group {
        let het = counts.n_het.unwrap_or(0);
        if !(1..20).contains(&het) {
            continue;
        }
        let (Some(a), Some(b)) = (
            cases.get(site).and_then(|c| c.n_het),
            controls.get(site).and_then(|c| c.n_het),
        ) else {
            continue;
        };
        small += 1;
        derived_exact += usize::from(a - b == het);
        let p = f.frequency[site];
        let expected = (no_bmi.len() as f64 * 2.0 * p * (1.0 - p)).round() as i64;
        guess_exact += usize::from(expected == het);
    }
    let (derived, guess) = (
        derived_exact as f64 / small.max(1) as f64,
        guess_exact as f64 / small.max(1) as f64,
    );
    report(
        "2 everyone minus those with a BMI (107 people)",
        &format!(
            "answered; of {small} sites where they hold 1-19 het calls, the difference is exact at {derived:.3} (guess from AF: {guess:.3})"
        ),
        &control,
    );
    if derived > guess + SLACK {
        failures.push(format!(
            "small difference: exact {derived} vs guess {guess}"
        ));
    }
    // The same shape around one participant: both cohorts are admitted.
    let (engine, control) = f.aggregate("differencing", 2.0).await;
    let query = format!(
        "SELECT pos, ref, alt, ac_cases - ac_controls AS ac FROM case_control({r}, {}, 'age >= 55')",
        quoted(&format!("age >= 55 OR ({t})"))
    );
    let estimates = estimates_of(&sql(&engine, &query).await.expect("answered"), "", 1.0);
    let result = score(&f, &estimates, SD * 2f64.sqrt(), &truth);
    report(
        "2b cohort with and without the target",
        &format!("answered; {result:?}"),
        &control,
    );
    check(&mut failures, "differencing", &result);
    // Everyone, and everyone but the target.
    let (engine, control) = f.aggregate("minus-target", 2.0).await;
    let query = format!(
        "SELECT a.pos, a.ref, a.alt, a.ac - b.ac AS ac FROM allele_frequencies({r}, '') a \
         JOIN allele_frequencies({r}, {}) b ON {JOIN}",
        quoted(&format!("({t}) IS NOT TRUE"))
    );
    match sql(&engine, &query).await {
        Ok(batches) => {
            let result = score(
                &f,
                &estimates_of(&batches, "", 1.0),
                SD * 2f64.sqrt(),
                &truth,
            );
            report(
                "2c everyone minus the target",
                &format!("answered; {result:?}"),
                &control,
            );
            check(&mut failures, "everyone minus target", &result);
        }
        Err(e) => {
            assert!(e.to_string().contains("permission denied"), "{e}");
            report(
                "2c everyone minus the target",
                "refused (leaves out too few)",
                &control,
            );
        }
    }

    // 3. The suppressed flag as an oracle: at sites with one carrier in the whole cohort,
    // whether the row among women is suppressed (or shows a count) said the carrier's sex.
    let (engine, control) = f.aggregate("flag-oracle", 2.0).await;
    let women = f.members("sex = 'F'").await;
    let by_women = rows(
        &f.admin
            .allele_frequencies(&f.regions, &Cohort::new(women.clone()))
            .await
            .unwrap(),
    );
    let everyone = f
        .admin
        .cohort(cohortdb_engine::CohortSpec::All)
        .await
        .unwrap();
    let all = rows(
        &f.admin
            .allele_frequencies(&f.regions, &everyone)
            .await
            .unwrap(),
    );
    let answer = rows(
        &engine
            .allele_frequencies(&f.regions, &engine.cohort("sex = 'F'").await.unwrap())
            .await
            .unwrap(),
    );
    let (mut hits, mut female, mut sites) = (0usize, 0usize, 0usize);
    for (site, counts) in &all {
        if counts.ac != Some(1) {
            continue;
        }
        sites += 1;
        let carrier_is_female = by_women[site].ac == Some(1);
        female += usize::from(carrier_is_female);
        // A site too few carry has no row at all (as in `variants`).
        let guess = answer
            .get(site)
            .is_some_and(|seen| seen.suppressed || seen.ac.is_some_and(|ac| ac > 0));
        hits += usize::from(guess == carrier_is_female);
    }
    let accuracy = hits as f64 / sites as f64;
    let chance = female.max(sites - female) as f64 / sites as f64;
    report(
        "3 suppressed flag at one-carrier sites",
        &format!("answered; {sites} sites, carrier's sex right {accuracy:.3}, chance {chance:.3}"),
        &control,
    );
    if accuracy > chance + SLACK {
        failures.push(format!("flag oracle: {accuracy} vs {chance}"));
    }
    // Forty predicates about one carrier: the budget ends the series.
    let (engine, control) = f.aggregate("flag-series", 2.0).await;
    let site = all
        .iter()
        .find(|(_, c)| c.ac == Some(1))
        .map(|(s, _)| s.clone())
        .unwrap();
    let one = Region::parse_list(&format!("chr20:{}", site.0)).unwrap();
    let mut answered = 0;
    for age in 41..81 {
        let request = engine.for_request();
        let Ok(cohort) = request.cohort(&format!("age < {age}")).await else {
            continue;
        };
        if request.allele_frequencies(&one, &cohort).await.is_ok() {
            answered += 1;
        }
    }
    report(
        "3b forty predicates about one carrier",
        &format!("{answered} of 40 answered"),
        &control,
    );
    if answered > 10 {
        failures.push(format!("flag series: {answered} answered"));
    }

    // 4. Errors that would depend on the data: a cast that fails on a value, and the refusal
    // of a small cohort. Each reads the same whatever the data.
    let (engine, control) = f.aggregate("errors", 2.0).await;
    let existing = &f.people[0].quant_trait;
    let mut texts = Vec::new();
    for value in [existing.as_str(), "12345.678"] {
        let error = engine
            .for_request()
            .cohort(&format!("quant_trait = {value} AND population > 5"))
            .await
            .unwrap_err();
        assert!(matches!(error, EngineError::PermissionDenied(_)), "{error}");
        texts.push(error.to_string().replace(value, "V"));
    }
    let lonely = f
        .people
        .iter()
        .find(|p| f.people.iter().filter(|q| q.age == p.age).count() == 1)
        .map(|p| p.age)
        .unwrap_or(99);
    for predicate in [format!("age = {lonely}"), "age = 200".to_string()] {
        let error = engine.for_request().cohort(&predicate).await.unwrap_err();
        texts.push(error.to_string());
    }
    report(
        "4 errors",
        &format!(
            "{:?}",
            texts.iter().collect::<std::collections::BTreeSet<_>>()
        ),
        &control,
    );
    if texts[0] != texts[1] || texts[2] != texts[3] {
        failures.push(format!("errors differ: {texts:?}"));
    }

    // 5. A tracker across requests.
    let (engine, control) = f.aggregate("tracker", 2.0).await;
    let with = engine
        .for_request()
        .allele_frequencies(
            &f.regions,
            &engine
                .for_request()
                .cohort(&format!("age >= 55 OR ({t})"))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let without = engine
        .for_request()
        .allele_frequencies(&f.regions, &engine.cohort("age >= 55").await.unwrap())
        .await
        .unwrap();
    let result = score(
        &f,
        &difference(&rows(&with), &rows(&without)),
        SD * 2f64.sqrt(),
        &truth,
    );
    report(
        "5 tracker across two requests",
        &format!("answered; {result:?}"),
        &control,
    );
    check(&mut failures, "tracker", &result);

    // Identical repeated questions: identical answers, charged once.
    let (engine, control) = f.aggregate("repeats", 2.0).await;
    let query = format!("SELECT * FROM allele_frequencies({r}, 'age >= 55')");
    let first = sql(&engine, &query).await.unwrap();
    // The question's release, and everyone's (whose carriers decide which sites are listed).
    let spent = control.budget().1;
    for _ in 0..5 {
        if sql(&engine, &query).await.unwrap() != first {
            failures.push("a repeated question got another answer".into());
        }
    }
    report("repeats", "6 identical answers", &control);
    if control.budget().1 > spent + 1e-9 || spent > 2.0 * control.release_cost() + 1e-9 {
        failures.push(format!("repeats were charged: {:?}", control.budget()));
    }

    // Averaging over many partitions of the same cohort plus the target.
    let (engine, control) = f.aggregate("partitions", 2.0).await;
    let base = rows(
        &engine
            .allele_frequencies(&f.regions, &engine.cohort("age >= 55").await.unwrap())
            .await
            .unwrap(),
    );
    let mut sums: BTreeMap<Site, (f64, usize)> = BTreeMap::new();
    let mut splits = 0;
    for bmi in 20..36 {
        let request = engine.for_request();
        let parts = request
            .cohorts(&[
                CohortSpec::parse(&format!("age >= 55 AND bmi < {bmi}")),
                CohortSpec::parse(&format!(
                    "(age >= 55 AND (bmi >= {bmi} OR bmi IS NULL)) OR ({t})"
                )),
            ])
            .await;
        let Ok(parts) = parts else { continue };
        let a = rows(
            &request
                .allele_frequencies(&f.regions, &parts[0])
                .await
                .unwrap(),
        );
        let b = rows(
            &request
                .allele_frequencies(&f.regions, &parts[1])
                .await
                .unwrap(),
        );
        splits += 1;
        for (site, x) in &a {
            if let (Some(x), Some(y)) = (x.ac, b.get(site).and_then(|c| c.ac)) {
                let entry = sums.entry(site.clone()).or_default();
                entry.0 += (x + y) as f64;
                entry.1 += 1;
            }
        }
    }
    let estimates: BTreeMap<Site, f64> = sums
        .into_iter()
        .filter(|(_, (_, n))| *n == splits && splits > 0)
        .filter_map(|(site, (sum, n))| {
            let c = base.get(&site)?.ac?;
            Some((site, sum / n as f64 - c as f64))
        })
        .collect();
    let sd = (2.0 * SD * SD / splits.max(1) as f64 + SD * SD).sqrt();
    let result = score(&f, &estimates, sd, &truth);
    report(
        "averaging over partitions",
        &format!("{splits} of 16 splits answered; {result:?}"),
        &control,
    );
    check(&mut failures, "partitions", &result);

    // The site list as a Beacon: is a site that few carry listed at all?
    let (engine, control) = f.aggregate("beacon-sites", 2.0).await;
    let listed = sql(&engine, "SELECT pos, ref, alt FROM variants")
        .await
        .unwrap();
    let listed: std::collections::HashSet<Site> = rows_with_sites(&listed);
    let carriers = carriers_per_site(&f).await;
    let rare: Vec<&Site> = carriers
        .iter()
        .filter(|(_, n)| (1..=5).contains(*n))
        .map(|(s, _)| s)
        .collect();
    let shown = rare.iter().filter(|s| listed.contains(**s)).count();
    report(
        "site list as a Beacon",
        &format!(
            "{} of {} sites with 1-5 carriers listed; {} sites listed of {}",
            shown,
            rare.len(),
            listed.len(),
            carriers.len()
        ),
        &control,
    );
    if shown * 100 > rare.len() {
        failures.push(format!("{shown} rare sites listed"));
    }

    linear_reconstruction(&f, &mut failures).await;
    membership(&f, &mut failures).await;
    utility(&f).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Dinur-Nissim: noisy counts of many random sub-cohorts of a group of about 100 (and 1,000),
/// solved for every member's dosage (Bayesian least squares towards the allele frequency).
async fn linear_reconstruction(f: &Fixture, failures: &mut Vec<String>) {
    use rand::{Rng, SeedableRng};
    let window = Region::parse_list("chr20:20000001-20100000").unwrap();
    // 99 and 958 participants of the simulated cohort.
    for (label, ages) in [("100", 69..=69), ("1,000", 56..=57)] {
        let group = format!("age BETWEEN {} AND {}", ages.start(), ages.end());
        let members: Vec<&Person> = f.people.iter().filter(|p| ages.contains(&p.age)).collect();
        let (engine, control) = f.aggregate(&format!("linear-{label}"), 2.0).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let mut queries: Vec<(Vec<f64>, BTreeMap<Site, Counts>)> = Vec::new();
        let mut asked = 0;
        for _ in 0..60 {
            asked += 1;
            let (column, low, high): (&str, f64, f64) = match rng.random_range(0..2) {
                0 => ("quant_trait", -3.0, 3.0),
                _ => ("bmi", 18.0, 35.0),
            };
            let threshold = rng.random_range(low..high);
            let predicate = format!("{group} AND {column} < {threshold:.4}");
            let request = engine.for_request();
            let Ok(cohort) = request.cohort(&predicate).await else {
                continue;
            };
            let chosen: Vec<f64> = members
                .iter()
                .map(|p| f64::from(u8::from(cohort.contains(p.idx))))
                .collect();
            let answer = rows(&request.allele_frequencies(&window, &cohort).await.unwrap());
            queries.push((chosen, answer));
        }
        // Common sites, where guessing is hardest.
        let mut sites: Vec<Site> = f
            .frequency
            .iter()
            .filter(|(s, p)| s.0 <= 20_100_000 && **p > 0.1 && **p < 0.5)
            .map(|(s, _)| s.clone())
            .collect();
        sites.sort();
        sites.truncate(40);
        let mut truths = Vec::new();
        for person in &members {
            let set: RoaringBitmap = std::iter::once(person.idx).collect();
            truths.push(rows(
                &f.admin
                    .allele_frequencies(&window, &Cohort::new(set))
                    .await
                    .unwrap(),
            ));
        }
        let (mut hits, mut chance, mut total) = (0usize, 0usize, 0usize);
        for site in &sites {
            let p = f.frequency[site];
            let (mean, var) = (2.0 * p, 2.0 * p * (1.0 - p));
            let used: Vec<&(Vec<f64>, BTreeMap<Site, Counts>)> = queries
                .iter()
                .filter(|(_, a)| a.get(site).is_some_and(|c| c.ac.is_some()))
                .collect();
            let estimate = posterior_mean(&used, site, members.len(), mean, var);
            for (i, truth) in truths.iter().enumerate() {
                let actual = truth.get(site).and_then(|c| c.ac).unwrap_or(0);
                let guess = estimate[i].round().clamp(0.0, 2.0) as i64;
                let prior_guess = if p < 1.0 / 3.0 { 0 } else { 1 };
                hits += usize::from(guess == actual);
                chance += usize::from(prior_guess == actual);
                total += 1;
            }
        }
        let (accuracy, chance) = (hits as f64 / total as f64, chance as f64 / total as f64);
        report(
            &format!("linear reconstruction, group of {}", members.len()),
            &format!(
                "{} of {asked} sub-cohorts answered; {total} dosages right {accuracy:.3}, chance {chance:.3}",
                queries.len()
            ),
            &control,
        );
        if accuracy > chance + SLACK {
            failures.push(format!("linear {label}: {accuracy} vs {chance}"));
        }
    }
}

/// Shringarpure-Bustamante over rare variants: does the answer for the cases show the rare
/// alleles a participant carries? Power at 5 % false positives over 200 cases and 200 controls.
async fn membership(f: &Fixture, failures: &mut Vec<String>) {
    let (engine, control) = f.aggregate("membership", 2.0).await;
    let answer = rows(
        &engine
            .allele_frequencies(
                &f.regions,
                &engine.cohort("case_control = 1").await.unwrap(),
            )
            .await
            .unwrap(),
    );
    let statistic = |dosages: &std::collections::HashMap<Site, i64>| {
        let rare: Vec<&Site> = dosages
            .iter()
            .filter(|(s, d)| **d > 0 && f.frequency.get(*s).is_some_and(|p| *p < 0.01))
            .map(|(s, _)| s)
            .collect();
        let present = rare
            .iter()
            .filter(|s| {
                answer
                    .get(**s)
                    .is_some_and(|c| c.suppressed || c.ac.is_some_and(|a| a > 0))
            })
            .count();
        present as f64 / rare.len().max(1) as f64
    };
    let (mut cases, mut controls) = (Vec::new(), Vec::new());
    for person in f.people.iter().filter(|p| p.case_control == 1).take(200) {
        cases.push(statistic(&f.dosages(person).await));
    }
    for person in f.people.iter().filter(|p| p.case_control == 0).take(200) {
        controls.push(statistic(&f.dosages(person).await));
    }
    controls.sort_by(f64::total_cmp);
    let threshold = controls[(controls.len() * 95) / 100];
    let power = cases.iter().filter(|s| **s > threshold).count() as f64 / cases.len() as f64;
    report(
        "membership test over rare variants (cases)",
        &format!("power {power:.3} at 5 % false positives (chance 0.05)"),
        &control,
    );
    if power > 0.05 + SLACK {
        failures.push(format!("membership power {power}"));
    }
}

/// The error the noise adds to allele frequencies, and what it withholds, for cohorts of about
/// 100, 1,000 and 10,000.
async fn utility(f: &Fixture) {
    eprintln!(
        "\n| cohort | size | rows shown | rows withheld | mean abs AF error | max abs AF error |\n|---|---|---|---|---|---|"
    );
    // 99, 958 and 10,000 participants.
    for predicate in ["age = 69", "age BETWEEN 56 AND 57", ""] {
        let (engine, _) = f.aggregate(&format!("utility {predicate}"), 2.0).await;
        let cohort = engine.cohort(predicate).await.unwrap();
        let truth = rows(
            &f.admin
                .allele_frequencies(&f.regions, &Cohort::new(cohort.set().clone()))
                .await
                .unwrap(),
        );
        let noisy = rows(
            &engine
                .allele_frequencies(&f.regions, &cohort)
                .await
                .unwrap(),
        );
        let (mut shown, mut withheld, mut sum, mut max) = (0usize, 0usize, 0.0f64, 0.0f64);
        for (site, c) in &noisy {
            match (c.ac, c.an) {
                (Some(ac), Some(an)) if an > 0 => {
                    let t = truth[site];
                    let exact = t.ac.unwrap_or(0) as f64 / t.an.unwrap_or(1).max(1) as f64;
                    let error = (ac as f64 / an as f64 - exact).abs();
                    sum += error;
                    max = max.max(error);
                    shown += 1;
                }
                _ => withheld += 1,
            }
        }
        eprintln!(
            "| {} | {} | {shown} | {withheld} | {:.5} | {:.5} |",
            if predicate.is_empty() {
                "everyone"
            } else {
                predicate
            },
            cohort.len(),
            sum / shown.max(1) as f64,
            max
        );
    }
}
