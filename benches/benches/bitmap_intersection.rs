//! Intersecting a variant's carrier bitmap with a cohort set at N = 100,000 participants:
//! rare (0.1%), common (20%) carriers against a 10% cohort.

use cohortdb_store::genotype_bitmaps::{deserialize_bitmap, serialize_bitmap};
use criterion::{Criterion, criterion_group, criterion_main};
use roaring::RoaringBitmap;

const N: u32 = 100_000;

fn every(step: u32, offset: u32) -> RoaringBitmap {
    (0..N)
        .filter(|i| (i * 7919 + offset).is_multiple_of(step))
        .collect()
}

fn bench(c: &mut Criterion) {
    let cohort = every(10, 3);
    for (name, carriers) in [("rare", every(1000, 1)), ("common", every(5, 2))] {
        let bytes = serialize_bitmap(&carriers);
        c.bench_function(&format!("intersection_len_{name}"), |b| {
            b.iter(|| carriers.intersection_len(&cohort))
        });
        c.bench_function(&format!("deserialize_and_count_{name}"), |b| {
            b.iter(|| deserialize_bitmap(&bytes).map(|x| x.intersection_len(&cohort)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
