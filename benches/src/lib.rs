//! cohortdb benchmarks: criterion micro-benchmarks in `benches/` (`cargo bench -p
//! cohortdb-benches`). The peer-comparison harness against bcftools and plink2 is not written
//! yet.
