//! Where an export's bytes go: a file or a buffer, or a channel to a network client that the
//! export waits on when the client reads slowly, so a served export holds at most a few chunks.

use std::future::Future;
use std::io::{self, Write};

/// An export's output. The export writes each record's bytes, then awaits
/// [`ExportOutput::hand_on`]: files and buffers have nothing to do there; a [`ChunkSender`]
/// sends its full chunks, waiting while its reader is behind.
pub trait ExportOutput: Write {
    /// Hands on what was written: full chunks, or with `all` (the export's end) every byte.
    fn hand_on(&mut self, all: bool) -> impl Future<Output = io::Result<()>>;
}

impl<W: Write> ExportOutput for io::BufWriter<W> {
    async fn hand_on(&mut self, _all: bool) -> io::Result<()> {
        Ok(())
    }
}

impl ExportOutput for Vec<u8> {
    async fn hand_on(&mut self, _all: bool) -> io::Result<()> {
        Ok(())
    }
}

impl<T: ExportOutput + ?Sized> ExportOutput for &mut T {
    fn hand_on(&mut self, all: bool) -> impl Future<Output = io::Result<()>> {
        (**self).hand_on(all)
    }
}

/// Sends an export's bytes in chunks of `chunk_bytes` through a bounded channel.
#[derive(Debug)]
pub struct ChunkSender {
    buffer: Vec<u8>,
    chunk_bytes: usize,
    sender: tokio::sync::mpsc::Sender<Vec<u8>>,
}

impl ChunkSender {
    /// Chunks of `chunk_bytes` (at least 1) into `sender`.
    pub fn new(chunk_bytes: usize, sender: tokio::sync::mpsc::Sender<Vec<u8>>) -> Self {
        Self {
            buffer: Vec::new(),
            chunk_bytes: chunk_bytes.max(1),
            sender,
        }
    }

    async fn send(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.sender
            .send(chunk)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the export's reader left"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ExportOutput for ChunkSender {
    async fn hand_on(&mut self, all: bool) -> io::Result<()> {
        while self.buffer.len() >= self.chunk_bytes {
            let rest = self.buffer.split_off(self.chunk_bytes);
            let chunk = std::mem::replace(&mut self.buffer, rest);
            self.send(chunk).await?;
        }
        if all && !self.buffer.is_empty() {
            let chunk = std::mem::take(&mut self.buffer);
            self.send(chunk).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_are_full_until_the_last_and_wait_for_the_reader() {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
        let mut out = ChunkSender::new(4, sender);
        out.write_all(b"0123456789").unwrap();
        // One chunk fits the channel; the second waits until it is read.
        let writer = tokio::spawn(async move {
            out.hand_on(false).await.unwrap();
            out.write_all(b"ab").unwrap();
            out.hand_on(true).await.unwrap();
        });
        let mut chunks = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            chunks.push(String::from_utf8(chunk).unwrap());
        }
        writer.await.unwrap();
        assert_eq!(chunks, ["0123", "4567", "89ab"]);
    }

    #[tokio::test]
    async fn a_reader_that_left_fails_the_export() {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        drop(receiver);
        let mut out = ChunkSender::new(2, sender);
        out.write_all(b"abc").unwrap();
        let err = out.hand_on(false).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
