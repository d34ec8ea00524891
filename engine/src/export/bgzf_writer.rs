//! A BGZF writer (SAM/BAM specification, section 4.1) that knows the virtual offset of every
//! byte it is given, for tabix and CSI indexes.

use std::io::{self, Write};

/// Uncompressed bytes per block, as htslib writes them.
const BLOCK_INPUT: usize = 0xff00;

/// The empty block that ends every BGZF file.
pub const EOF_BLOCK: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0, 0x1b, 0, 0x03, 0, 0,
    0, 0, 0, 0, 0, 0, 0,
];

/// Compresses everything written to it into BGZF blocks.
pub struct BgzfWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
    compressed_offset: u64,
    compressor: libdeflater::Compressor,
    out: Vec<u8>,
}

impl<W: Write> BgzfWriter<W> {
    /// A writer into `inner`, compressing at level 6.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buffer: Vec::with_capacity(BLOCK_INPUT),
            compressed_offset: 0,
            compressor: libdeflater::Compressor::new(libdeflater::CompressionLvl::default()),
            out: Vec::new(),
        }
    }

    /// The writer the blocks go to.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The virtual offset of the next byte written: compressed block start << 16 | offset in
    /// the block.
    pub fn virtual_offset(&self) -> u64 {
        (self.compressed_offset << 16) | self.buffer.len() as u64
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let bound = self.compressor.deflate_compress_bound(self.buffer.len());
        self.out.clear();
        self.out.resize(18 + bound + 8, 0);
        let size = self
            .compressor
            .deflate_compress(&self.buffer, &mut self.out[18..18 + bound])
            .map_err(|e| io::Error::other(format!("BGZF compression: {e:?}")))?;
        let total = 18 + size + 8;
        let header = [
            0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0,
        ];
        self.out[..16].copy_from_slice(&header);
        self.out[16..18].copy_from_slice(&((total - 1) as u16).to_le_bytes());
        let mut crc = libdeflater::Crc::new();
        crc.update(&self.buffer);
        self.out[18 + size..22 + size].copy_from_slice(&crc.sum().to_le_bytes());
        self.out[22 + size..26 + size].copy_from_slice(&(self.buffer.len() as u32).to_le_bytes());
        self.inner.write_all(&self.out[..total])?;
        self.compressed_offset += total as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Writes the last block and the EOF marker, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_block()?;
        self.inner.write_all(&EOF_BLOCK)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for BgzfWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let written = data.len();
        while !data.is_empty() {
            let room = BLOCK_INPUT - self.buffer.len();
            let take = room.min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() == BLOCK_INPUT {
                self.flush_block()?;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `data` as a whole BGZF file (for index files).
pub fn bgzf_compress(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut writer = BgzfWriter::new(Vec::new());
    writer.write_all(data)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_readers_read_it_back() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut writer = BgzfWriter::new(Vec::new());
        writer.write_all(&data[..100]).unwrap();
        assert_eq!(writer.virtual_offset(), 100);
        writer.write_all(&data[100..]).unwrap();
        let file = writer.finish().unwrap();
        assert!(file.ends_with(&EOF_BLOCK));
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&file[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
