// Cluster ingest as a Nextflow (DSL2) workflow: one task per part I/N of the inputs, each
// running `cohortdb ingest vcf --shard I/N` and committing on its own (the same commands as
// ingest.slurm). A retried task whose part is committed does nothing, so `-resume` and task
// retries are safe. The store must be reachable from every task: a shared directory or
// s3://bucket/prefix (AWS_* variables in the task environment).
//
//   nextflow run examples/cluster/ingest.nf --store s3://biobank/store --inputs 'batch42.vcf.gz' --parts 16
//   nextflow run examples/cluster/ingest.nf --store /shared/store --inputs 'batch42.vcf.gz' --regions 'chr1,chr2;chr3;chr4'
//
// Not run on the development machine (it has no JVM and no network to fetch Nextflow); the
// commands it runs are the ones cli/tests/cluster_ingest.rs checks.

nextflow.enable.dsl = 2

params.store = null
params.inputs = null
params.parts = 8
params.regions = null          // region sets separated by ';' (one task each), or null for --shard
params.cohortdb = 'cohortdb'

process COHORTDB_INGEST_PART {
    tag "${part}"
    cpus 8
    memory '8 GB'
    maxRetries 3
    errorStrategy 'retry'

    input:
    tuple val(part), val(option), path(inputs)

    output:
    stdout

    script:
    """
    ${params.cohortdb} ingest vcf --store '${params.store}' ${option} ${inputs}
    """
}

workflow {
    if (!params.store || !params.inputs) {
        error "give --store STORE and --inputs 'FILE...'"
    }
    inputs = Channel.fromPath(params.inputs.tokenize(' '), checkIfExists: true).collect()
    parts = params.regions
        ? Channel.fromList(params.regions.tokenize(';')).map { r -> [r, "--region '${r}'"] }
        : Channel.of(1..params.parts).map { i -> ["${i}/${params.parts}", "--shard ${i}/${params.parts}"] }
    COHORTDB_INGEST_PART(parts.combine(inputs.map { [it] }).map { p, o, f -> [p, o, f] })
}
