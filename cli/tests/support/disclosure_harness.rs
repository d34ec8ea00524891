//! What the disclosure attacks share: the simulated cohort with its phenotypes, an admin engine
//! for the truth, aggregate engines with a budget of their own per attack, and the measures
//! (reconstruction accuracy against the chance of guessing from allele frequencies).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use cohortdb_engine::policy::disclosure_control::{DEFAULT_NOISE_SD, DisclosureControl};
use cohortdb_engine::{Access, Cohort, CohortEngine, Region, Tier};
use cohortdb_store::privacy_ledger::PrivacyLedger;
use roaring::RoaringBitmap;

/// The simulated region.
pub const REGION: &str = "chr20:20000001-21000000";

/// k, as the server's default.
pub const K: u32 = 20;

/// A site: position, REF, ALT.
pub type Site = (i64, String, String);

/// One participant's phenotype row, as the simulator wrote it.
#[derive(Debug, Clone)]
pub struct Person {
    pub idx: u32,
    pub sex: String,
    pub age: i64,
    pub bmi: Option<String>,
    pub population: String,
    pub case_control: i64,
    pub quant_trait: String,
}

/// Counts of one row as an answer gives them (None where withheld).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub ac: Option<i64>,
    pub an: Option<i64>,
    pub n_het: Option<i64>,
    pub n_hom_alt: Option<i64>,
    pub suppressed: bool,
}

/// The cohort, its truth and its answers.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub admin: CohortEngine,
    pub people: Vec<Person>,
    pub regions: Vec<Region>,
    /// Whole-cohort allele frequency per site (the attacker's prior).
    pub frequency: HashMap<Site, f64>,
}

impl Fixture {
    pub async fn new() -> Self {
        let (dir, store) = crate::oracle_support::sim_store(true);
        // A fixed noise key, so that every run draws the same noise (a store makes a random
        // one on first use).
        std::fs::create_dir_all(format!("{store}/_privacy")).expect("_privacy");
        std::fs::write(format!("{store}/_privacy/noise_key"), "ab".repeat(32)).expect("key");
        let admin = CohortEngine::open(&store).await.expect("open");
        let index: HashMap<String, u32> = admin
            .samples()
            .iter()
            .map(|s| (s.sample_id.clone(), s.sample_idx))
            .collect();
        let table =
            std::fs::read_to_string(format!("{}.pheno.tsv", crate::oracle_support::sim_prefix()))
                .expect("phenotypes");
        let people = table
            .lines()
            .skip(1)
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                Person {
                    idx: index[f[0]],
                    sex: f[1].into(),
                    age: f[2].parse().expect("age"),
                    bmi: (f[3] != "NA").then(|| f[3].to_string()),
                    population: f[4].into(),
                    case_control: f[5].parse().expect("case_control"),
                    quant_trait: f[6].into(),
                }
            })
            .collect();
        let regions = Region::parse_list(REGION).expect("region");
        let mut fixture = Self {
            _dir: dir,
            admin,
            people,
            regions,
            frequency: HashMap::new(),
        };
        let everyone = fixture.admin.cohort(cohortdb_engine::CohortSpec::All).await;
        let batch = fixture
            .admin
            .allele_frequencies(&fixture.regions, &everyone.expect("everyone"))
            .await
            .expect("af");
        fixture.frequency = rows(&batch)
            .into_iter()
            .map(|(site, c)| {
                let p = c.ac.unwrap_or(0) as f64 / c.an.unwrap_or(1).max(1) as f64;
                (site, p)
            })
            .collect();
        fixture
    }

    /// An aggregate engine of a project of its own, with the default noise and `budget`, its
    /// charges kept in the store's ledger.
    pub async fn aggregate(
        &self,
        project: &str,
        budget: f64,
    ) -> (CohortEngine, Arc<DisclosureControl>) {
        let ledger = PrivacyLedger::new(self.admin.store().location().clone());
        let control = Arc::new(
            DisclosureControl::open(ledger, project, budget, DEFAULT_NOISE_SD)
                .await
                .expect("disclosure control"),
        );
        let engine = self
            .admin
            .with_access(Access {
                tier: Tier::Aggregate,
                min_count: K,
                pseudonym_secret: None,
                disclosure: Some(control.clone()),
                phenotypes: None,
            })
            .expect("aggregate engine");
        (engine, control)
    }

    /// Each participant's dosage at every site of the region.
    pub async fn dosages(&self, person: &Person) -> HashMap<Site, i64> {
        let set: RoaringBitmap = std::iter::once(person.idx).collect();
        let batch = self
            .admin
            .allele_frequencies(&self.regions, &Cohort::new(set))
            .await
            .expect("truth");
        rows(&batch)
            .into_iter()
            .map(|(site, c)| (site, c.ac.unwrap_or(0)))
            .collect()
    }

    /// The participants a predicate chooses, as the admin evaluates it.
    pub async fn members(&self, predicate: &str) -> RoaringBitmap {
        self.admin
            .cohort(predicate)
            .await
            .expect("cohort")
            .into_set()
    }

    /// A participant of `pool` whose sex, age, BMI and population no one else shares, and the
    /// predicate that picks them alone.
    pub fn unique_target(&self, pool: impl Fn(&Person) -> bool) -> (Person, String) {
        let key = |p: &Person| (p.sex.clone(), p.age, p.bmi.clone(), p.population.clone());
        let mut seen: HashMap<_, usize> = HashMap::new();
        for p in &self.people {
            *seen.entry(key(p)).or_default() += 1;
        }
        let person = self
            .people
            .iter()
            .find(|p| pool(p) && p.bmi.is_some() && seen[&key(p)] == 1)
            .expect("a participant with a unique row")
            .clone();
        let predicate = format!(
            "sex = '{}' AND age = {} AND bmi = {} AND population = '{}'",
            person.sex,
            person.age,
            person.bmi.clone().unwrap_or_default(),
            person.population
        );
        (person, predicate)
    }
}

/// The rows of `allele_frequencies` (or `case_control` with `suffix`) batches.
pub fn rows_with(batches: &[RecordBatch], suffix: &str) -> BTreeMap<Site, Counts> {
    let mut out = BTreeMap::new();
    for batch in batches {
        let text = |name: &str| {
            arrow::compute::cast(
                batch.column_by_name(name).expect(name),
                &arrow::datatypes::DataType::Utf8,
            )
            .expect("text")
        };
        let int = |name: &str| {
            arrow::compute::cast(
                batch.column_by_name(name).expect(name),
                &arrow::datatypes::DataType::Int64,
            )
            .expect("int")
        };
        // A column the query did not select reads as withheld.
        let int = |name: &str| match batch.column_by_name(name) {
            Some(_) => int(name),
            None => {
                arrow::array::new_null_array(&arrow::datatypes::DataType::Int64, batch.num_rows())
            }
        };
        let (pos, reference, alt) = (int("pos"), text("ref"), text("alt"));
        let (ac, an, het, hom) = (
            int(&format!("ac{suffix}")),
            int(&format!("an{suffix}")),
            int(&format!("n_het{suffix}")),
            int(&format!("n_hom_alt{suffix}")),
        );
        let suppressed = batch
            .column_by_name("suppressed")
            .map(|c| c.as_boolean().clone());
        for r in 0..batch.num_rows() {
            let value = |a: &Arc<dyn Array>| {
                let a = a.as_primitive::<Int64Type>();
                a.is_valid(r).then(|| a.value(r))
            };
            out.insert(
                (
                    pos.as_primitive::<Int64Type>().value(r),
                    reference.as_string::<i32>().value(r).to_string(),
                    alt.as_string::<i32>().value(r).to_string(),
                ),
                Counts {
                    ac: value(&ac),
                    an: value(&an),
                    n_het: value(&het),
                    n_hom_alt: value(&hom),
                    suppressed: suppressed.as_ref().is_some_and(|s| s.value(r)),
                },
            );
        }
    }
    out
}

/// [`rows_with`] of one batch without a suffix.
pub fn rows(batch: &RecordBatch) -> BTreeMap<Site, Counts> {
    rows_with(std::slice::from_ref(batch), "")
}

/// How well a reconstruction of one participant's dosages did.
#[derive(Debug, Clone, Copy)]
pub struct Reconstruction {
    /// Fraction where the attacker's best guess (the maximum a posteriori dosage given the
    /// estimate, its known noise and the cohort's allele frequency) equals the truth.
    pub accuracy: f64,
    /// Fraction where the guess from the allele frequency alone equals the truth.
    pub chance: f64,
}

/// Hardy-Weinberg genotype probabilities at allele frequency `p`.
fn prior(p: f64) -> [f64; 3] {
    [(1.0 - p).powi(2), 2.0 * p * (1.0 - p), p * p]
}

fn argmax(v: [f64; 3]) -> i64 {
    let mut best = 0;
    for d in 1..3 {
        if v[d] > v[best] {
            best = d;
        }
    }
    best as i64
}

/// Scores `estimates` (a noisy dosage per site, of standard deviation `sd`) against `truth`,
/// at the sites whose allele frequency is at least 5 % (where a guess from it is often wrong;
/// at rare sites "0" is right almost always, with or without an attack).
pub fn score(
    fixture: &Fixture,
    estimates: &BTreeMap<Site, f64>,
    sd: f64,
    truth: &HashMap<Site, i64>,
) -> Reconstruction {
    let (mut hits, mut chance, mut sites) = (0usize, 0usize, 0usize);
    for (site, x) in estimates {
        let p = fixture.frequency.get(site).copied().unwrap_or(0.0);
        if p < 0.05 {
            continue;
        }
        sites += 1;
        let prior = prior(p);
        let posterior: [f64; 3] = std::array::from_fn(|d| {
            let z = (x - d as f64) / sd;
            prior[d] * (-0.5 * z * z).exp()
        });
        let actual = truth.get(site).copied().unwrap_or(0);
        hits += usize::from(argmax(posterior) == actual);
        chance += usize::from(argmax(prior) == actual);
    }
    let n = sites.max(1) as f64;
    Reconstruction {
        accuracy: hits as f64 / n,
        chance: chance as f64 / n,
    }
}

/// Collects a query of an aggregate engine (one request).
pub async fn sql(engine: &CohortEngine, query: &str) -> cohortdb_engine::Result<Vec<RecordBatch>> {
    Ok(engine.for_request().sql(query).await?.collect().await?)
}

/// One line of the report.
pub fn report(attack: &str, outcome: &str, control: &DisclosureControl) {
    let (budget, spent) = control.budget();
    eprintln!("| {attack} | {outcome} | {spent:.2} of {budget:.2} |");
}

/// Per site, `scale` times the column `ac` of a query's rows, where present.
pub fn estimates_of(batches: &[RecordBatch], suffix: &str, scale: f64) -> BTreeMap<Site, f64> {
    rows_with(batches, suffix)
        .into_iter()
        .filter_map(|(site, c)| Some((site, c.ac? as f64 * scale)))
        .collect()
}

/// The sites of a query's `pos ref alt` rows.
pub fn rows_with_sites(batches: &[RecordBatch]) -> std::collections::HashSet<Site> {
    let mut out = std::collections::HashSet::new();
    for b in batches {
        let text = |c: &str| {
            arrow::compute::cast(
                b.column_by_name(c).unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap()
        };
        let (pos, reference, alt) = (text("pos"), text("ref"), text("alt"));
        use arrow::array::AsArray;
        for r in 0..b.num_rows() {
            out.insert((
                pos.as_string::<i32>().value(r).parse().unwrap(),
                reference.as_string::<i32>().value(r).to_string(),
                alt.as_string::<i32>().value(r).to_string(),
            ));
        }
    }
    out
}

/// Carriers of each site among everyone, as the admin counts them.
pub async fn carriers_per_site(f: &Fixture) -> BTreeMap<Site, i64> {
    let everyone = f
        .admin
        .cohort(cohortdb_engine::CohortSpec::All)
        .await
        .unwrap();
    rows(
        &f.admin
            .allele_frequencies(&f.regions, &everyone)
            .await
            .unwrap(),
    )
    .into_iter()
    .map(|(site, c)| (site, c.n_het.unwrap_or(0) + c.n_hom_alt.unwrap_or(0)))
    .collect()
}

/// `a - b` of AC per site present in both.
pub fn difference(a: &BTreeMap<Site, Counts>, b: &BTreeMap<Site, Counts>) -> BTreeMap<Site, f64> {
    a.iter()
        .filter_map(|(site, x)| Some((site.clone(), (x.ac? - b.get(site)?.ac?) as f64)))
        .collect()
}

/// The posterior mean of every member's dosage at `site` given noisy AC of the `used`
/// sub-cohorts (a Gaussian prior of `mean`, `var` per member; noise of variance sd^2).
#[allow(clippy::needless_range_loop)] // matrix algebra reads best with indices
pub fn posterior_mean(
    used: &[&(Vec<f64>, BTreeMap<Site, Counts>)],
    site: &Site,
    n: usize,
    mean: f64,
    var: f64,
) -> Vec<f64> {
    let m = used.len();
    let mut out = vec![mean; n];
    if m == 0 {
        return out;
    }
    // S = var Q Q^T + sd^2 I (m x m); r = y - Q mean.
    let sd = DEFAULT_NOISE_SD;
    let mut s = vec![vec![0.0; m]; m];
    let mut r = vec![0.0; m];
    for i in 0..m {
        let qi = &used[i].0;
        for j in 0..m {
            let dot: f64 = qi.iter().zip(&used[j].0).map(|(a, b)| a * b).sum();
            s[i][j] = var * dot + if i == j { sd * sd } else { 0.0 };
        }
        let y = used[i].1[site].ac.unwrap_or(0) as f64;
        r[i] = y - mean * qi.iter().sum::<f64>();
    }
    // Solve S w = r (Gaussian elimination; S is positive definite).
    for col in 0..m {
        let pivot = s[col][col];
        for row in col + 1..m {
            let factor = s[row][col] / pivot;
            for k in col..m {
                s[row][k] -= factor * s[col][k];
            }
            r[row] -= factor * r[col];
        }
    }
    let mut w = vec![0.0; m];
    for row in (0..m).rev() {
        let tail: f64 = (row + 1..m).map(|k| s[row][k] * w[k]).sum();
        w[row] = (r[row] - tail) / s[row][row];
    }
    for (i, value) in out.iter_mut().enumerate() {
        *value += var * (0..m).map(|q| used[q].0[i] * w[q]).sum::<f64>();
    }
    out
}
