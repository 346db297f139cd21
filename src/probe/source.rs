//! Byte sources: where the parsers read from.
//!
//! Parsers only ever ask for a range of bytes at an offset, so the same parser reads a local
//! file, a buffer in memory, or (later) an HTTP resource through range requests. Every read is
//! bounded by the caller; a source never allocates on behalf of a size declared in a file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Random-access, read-only bytes with a known length.
pub trait ByteSource {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Whether the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset`. Returns the number of bytes read, which is short only at the
    /// end of the source.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Bytes actually read from the underlying medium so far.
    fn bytes_read(&self) -> u64;
    /// How many leading bytes a parser reads up front (a local file: 64 KiB, cheap; over HTTP
    /// what the first request fetched).
    fn head_len(&self) -> usize {
        super::reader::HEAD_LEN
    }
    /// How much a sequential read past the head asks for at once.
    fn granule(&self) -> usize {
        super::reader::SEQ_BLOCK
    }
}

/// A local file read with positioned reads (`pread`), never modified.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
    bytes_read: u64,
}

impl FileSource {
    /// Opens `path` read-only. Only regular files (or symbolic links to them) are read: a
    /// FIFO, a device or a socket is refused at once — opened without blocking, so a FIFO with
    /// no writer cannot hang the caller.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = open_regular(path)?;
        let len = file.metadata()?.len();
        Ok(Self { file, len, bytes_read: 0 })
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            let pos = match offset.checked_add(filled as u64) {
                Some(p) => p,
                None => break,
            };
            match self.file.read_at(&mut buf[filled..], pos) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.bytes_read += filled as u64;
        Ok(filled)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

/// Opens a regular file for reading (following symbolic links), refusing anything else before
/// a read can block on it.
pub fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_dir() {
        return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: wanprep reads only regular files")))
}

/// The whole of a regular file, refused when it is longer than `cap` bytes (checked before
/// anything is allocated).
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{len} bytes is more than the {cap} bytes this step reads into memory"),
        ));
    }
    let mut data = Vec::with_capacity(len as usize);
    // Never more than the cap, even if the file grows meanwhile.
    file.take(cap + 1).read_to_end(&mut data)?;
    if data.len() as u64 > cap {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the file grew past the size read into memory"));
    }
    Ok(data)
}

/// Bytes in memory (tests, fuzzing, data already downloaded).
#[derive(Debug, Clone)]
pub struct MemorySource<'a> {
    data: &'a [u8],
    bytes_read: u64,
}

impl<'a> MemorySource<'a> {
    /// Wraps a byte slice.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, bytes_read: 0 }
    }
}

impl ByteSource for MemorySource<'_> {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= self.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        self.bytes_read += n as u64;
        Ok(n)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}
