"""A coordinate-free SAM of paired 150 bp reads at 30x over one 2 Mb contig (5% MAPQ 0, 3%
duplicates), for the coverage benchmark; sort and index it with samtools. Seeded."""
import random, sys
random.seed(7)
L = 2_000_000; depth = 30; rl = 150
n = L * depth // (2 * rl)
print("@HD\tVN:1.6\tSO:unsorted")
print(f"@SQ\tSN:chrB\tLN:{L}")
print("@RG\tID:rg1\tSM:BENCH1")
seq = "A" * rl; qual = "I" * rl
out = sys.stdout
for i in range(n):
    p1 = random.randint(1, L - 500)
    ins = random.randint(200, 400)
    p2 = p1 + ins - rl
    mapq = 60 if random.random() > 0.05 else 0
    dup = 1024 if random.random() < 0.03 else 0
    f1 = 1 + 2 + 32 + 64 + dup
    f2 = 1 + 2 + 16 + 128 + dup
    tl = ins
    out.write(f"r{i}\t{f1}\tchrB\t{p1}\t{mapq}\t{rl}M\t=\t{p2}\t{tl}\t{seq}\t{qual}\tRG:Z:rg1\n")
    out.write(f"r{i}\t{f2}\tchrB\t{p2}\t{mapq}\t{rl}M\t=\t{p1}\t{-tl}\t{seq}\t{qual}\tRG:Z:rg1\n")
