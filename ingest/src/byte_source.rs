//! Decompressed input bytes in large chunks: plain, gzip, or BGZF inflated in parallel.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use rayon::prelude::*;

use crate::error::{IngestError, Result};

/// Bytes of decompressed input per chunk handed to the parser: at 10^6 participants (4 MB a
/// record) 32 MiB gives the parse eight records to spread over the cores, where 8 MiB gave two
/// or three and left a core idle (ingest 46.4 -> 41.0 s; docs/ingest.md).
pub const CHUNK_BYTES: usize = 32 << 20;
const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0, 0x1b, 0, 0x03, 0, 0,
    0, 0, 0, 0, 0, 0, 0,
];

/// A source of decompressed bytes.
pub struct ByteSource {
    name: String,
    kind: SourceKind,
    /// Bytes read from the input as stored (compressed), for progress.
    stored: ReadCount,
    /// The input's stored size, when it is a file.
    size: Option<u64>,
}

enum SourceKind {
    Plain(Box<dyn Read + Send>),
    Gzip(Box<MultiGzDecoder<PrefixedReader>>),
    Bgzf(BgzfState),
}

struct BgzfState {
    reader: PrefixedReader,
    offset: u64,
    saw_eof_block: bool,
    done: bool,
}

/// How many bytes a [`Counted`] input has given.
type ReadCount = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// The input file, counting the bytes read from it: for progress, and so that a damaged gzip
/// stream is reported at the offset where decoding stopped.
struct Counted {
    inner: Box<dyn Read + Send>,
    count: ReadCount,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// A reader that first yields bytes already peeked from the input.
pub struct PrefixedReader {
    prefix: std::io::Cursor<Vec<u8>>,
    inner: Box<dyn Read + Send>,
}

impl Read for PrefixedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.prefix.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl ByteSource {
    /// Opens `name` (`-` for standard input) and detects its compression.
    pub fn open(name: &str) -> Result<Self> {
        let io_err = |source| IngestError::Io {
            file: name.to_string(),
            source,
        };
        let stored = ReadCount::default();
        let (file, size): (Box<dyn Read + Send>, _) = if name == "-" {
            (Box::new(std::io::stdin()), None)
        } else {
            let file = std::fs::File::open(name).map_err(io_err)?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), size)
        };
        let mut inner: Box<dyn Read + Send> = Box::new(Counted {
            inner: file,
            count: stored.clone(),
        });
        let mut head = vec![0u8; 18];
        let n = read_full(&mut inner, &mut head).map_err(io_err)?;
        head.truncate(n);
        if n == 0 {
            return Err(IngestError::Header {
                file: name.to_string(),
                line: 0,
                reason: "the file is empty".into(),
            });
        }
        let is_gzip = head.starts_with(&[0x1f, 0x8b]);
        let is_bgzf =
            n >= 16 && is_gzip && head[3] & 4 != 0 && head[12] == b'B' && head[13] == b'C';
        let reader = PrefixedReader {
            prefix: std::io::Cursor::new(head.clone()),
            inner,
        };
        let kind = if is_bgzf {
            SourceKind::Bgzf(BgzfState {
                reader,
                offset: 0,
                saw_eof_block: false,
                done: false,
            })
        } else if is_gzip {
            SourceKind::Gzip(Box::new(MultiGzDecoder::new(reader)))
        } else {
            SourceKind::Plain(Box::new(reader))
        };
        Ok(Self {
            name: name.to_string(),
            kind,
            stored,
            size,
        })
    }

    /// The input's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of the input read so far as stored (compressed), and its stored size when it is
    /// a file: how far an ingest is.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (
            self.stored.load(std::sync::atomic::Ordering::Relaxed),
            self.size,
        )
    }

    /// The next chunk of decompressed bytes, `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        let name = self.name.clone();
        match &mut self.kind {
            SourceKind::Plain(reader) => read_chunk(reader, &name),
            SourceKind::Gzip(reader) => read_chunk(reader, &name).map_err(|e| match e {
                IngestError::Io { file, source } => {
                    let offset = self.stored.load(std::sync::atomic::Ordering::Relaxed);
                    let truncated = source.kind() == std::io::ErrorKind::UnexpectedEof
                        || source.to_string().contains("incomplete");
                    let reason = if truncated {
                        format!(
                            "the file is truncated: its gzip stream stops unfinished after \
                             {offset} bytes ({source})"
                        )
                    } else {
                        format!("gzip stream: {source}")
                    };
                    IngestError::Compression {
                        file,
                        offset,
                        reason,
                    }
                }
                other => other,
            }),
            SourceKind::Bgzf(state) => state.next_chunk(&name),
        }
    }
}

fn read_chunk(reader: &mut impl Read, name: &str) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let n = read_full(reader, &mut buf).map_err(|source| IngestError::Io {
        file: name.to_string(),
        source,
    })?;
    if n == 0 {
        return Ok(None);
    }
    buf.truncate(n);
    Ok(Some(buf))
}

struct RawBlock {
    offset: u64,
    data: Vec<u8>,
}

impl BgzfState {
    fn next_chunk(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let damaged = |offset: u64, reason: String| IngestError::Compression {
            file: name.to_string(),
            offset,
            reason,
        };
        // Read raw blocks until about CHUNK_BYTES of inflated data is in hand (genotype text
        // compresses 50-100x, so the compressed size alone would not bound memory).
        let mut blocks = Vec::new();
        let mut inflated_total = 0usize;
        while inflated_total < CHUNK_BYTES {
            let mut header = [0u8; 18];
            let n = read_full(&mut self.reader, &mut header).map_err(|source| IngestError::Io {
                file: name.to_string(),
                source,
            })?;
            if n == 0 {
                self.done = true;
                if !self.saw_eof_block {
                    return Err(damaged(
                        self.offset,
                        "no BGZF end-of-file block: the file is truncated".into(),
                    ));
                }
                break;
            }
            if n < 18
                || header[..4] != [0x1f, 0x8b, 0x08, 0x04]
                || header[12] != b'B'
                || header[13] != b'C'
            {
                return Err(damaged(
                    self.offset,
                    "not a BGZF block header (truncated or corrupt)".into(),
                ));
            }
            let xlen = u16::from_le_bytes([header[10], header[11]]) as usize;
            let bsize = u16::from_le_bytes([header[16], header[17]]) as usize + 1;
            if bsize < 12 + xlen + 8 || xlen < 6 {
                return Err(damaged(
                    self.offset,
                    format!("block size {bsize} is impossible"),
                ));
            }
            let mut data = vec![0u8; bsize];
            data[..18].copy_from_slice(&header);
            let got =
                read_full(&mut self.reader, &mut data[18..]).map_err(|source| IngestError::Io {
                    file: name.to_string(),
                    source,
                })?;
            if got < bsize - 18 {
                return Err(damaged(
                    self.offset,
                    format!("block cut short: {} of {bsize} bytes", got + 18),
                ));
            }
            self.saw_eof_block = data == BGZF_EOF;
            let isize = u32::from_le_bytes([
                data[bsize - 4],
                data[bsize - 3],
                data[bsize - 2],
                data[bsize - 1],
            ]) as usize;
            if isize > 65536 {
                return Err(damaged(
                    self.offset,
                    format!("inflated size {isize} exceeds the BGZF limit"),
                ));
            }
            inflated_total += isize;
            blocks.push(RawBlock {
                offset: self.offset,
                data,
            });
            self.offset += bsize as u64;
        }
        // Inflate every block in parallel straight into its place in one buffer.
        let mut out = vec![0u8; inflated_total];
        let mut slots = Vec::with_capacity(blocks.len());
        let mut rest = out.as_mut_slice();
        for block in &blocks {
            let (slot, tail) = rest.split_at_mut(block.inflated_len());
            slots.push(slot);
            rest = tail;
        }
        blocks
            .par_iter()
            .zip(slots.into_par_iter())
            .try_for_each(|(block, slot)| {
                inflate_block(block, slot).map_err(|reason| damaged(block.offset, reason))
            })?;
        if out.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(out))
    }
}

impl RawBlock {
    /// The inflated size its trailer announces (checked against 64 KiB when read).
    fn inflated_len(&self) -> usize {
        let t = &self.data[self.data.len() - 4..];
        u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize
    }
}

/// Inflates `block` into `out` (exactly its announced size) and checks its CRC32.
fn inflate_block(block: &RawBlock, out: &mut [u8]) -> std::result::Result<(), String> {
    let data = &block.data;
    let xlen = u16::from_le_bytes([data[10], data[11]]) as usize;
    let start = 12 + xlen;
    let end = data.len() - 8;
    let trailer = &data[end..];
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let mut decompressor = libdeflater::Decompressor::new();
    let n = decompressor
        .deflate_decompress(&data[start..end], out)
        .map_err(|e| format!("deflate error: {e:?}"))?;
    if n != out.len() {
        return Err(format!("inflated {n} bytes, header says {}", out.len()));
    }
    let mut check = libdeflater::Crc::new();
    check.update(out);
    if check.sum() != crc {
        return Err("CRC32 checksum mismatch".into());
    }
    Ok(())
}
