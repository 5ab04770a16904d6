//! Scanning a log file of checksummed records on open, with the torn-tail rule, shared
//! by [`crate::FileStorage`]'s segments and [`crate::MultiLog`]'s segments.
//!
//! Only the last file of a log can end in a torn write (a file is synced before the
//! next one is created). In the last file, a record is a torn write (and it and
//! everything after it is cut off, with a warning) when
//! - the file ends inside it (a partial header or payload), or
//! - its header is all zeros, or
//! - its checksum fails and a 512-byte sector it touches is all zeros (space the file
//!   system allocated but the disk never wrote, as etcd's WAL also assumes).
//!
//! Any other damage, anywhere, is [`Error::Corrupt`] naming the file and offset.

use std::path::Path;

use tracing::warn;

use crate::error::{Corruption, Error};
use crate::format::{
    decode_file_header, decode_record_header, has_zero_sector, payload_ok, FileKind, HeaderProblem, FILE_HEADER_LEN,
    FORMAT_VERSION, RECORD_HEADER_LEN, SECTOR,
};
use crate::vfs::VfsFile;

/// Reads go to disk in chunks of about this size.
pub(crate) const CHUNK: u64 = 1 << 20;

/// Checks the header of a log file of `kind` on open; returns its base, or `None` if
/// the last file's header itself is a torn write (the file holds nothing acknowledged).
pub(crate) fn scan_header(
    r: &mut Reader<'_>,
    kind: FileKind,
    is_last: bool,
    path: &Path,
) -> Result<Option<u64>, Error> {
    let corrupt = |kind| Error::Corrupt {
        path: path.to_owned(),
        offset: 0,
        kind,
    };
    let head = r.window(0, FILE_HEADER_LEN as u64).map_err(Error::io("read", path))?;
    match decode_file_header(head, kind) {
        Ok(base) => Ok(Some(base)),
        Err(HeaderProblem::Short | HeaderProblem::Zero) if is_last => Ok(None),
        Err(HeaderProblem::Checksum) if is_last && r.zero_sector(0, FILE_HEADER_LEN as u64, path)? => Ok(None),
        Err(HeaderProblem::Short) => Err(corrupt(Corruption::ShortHeader)),
        Err(HeaderProblem::Zero | HeaderProblem::Checksum) => Err(corrupt(Corruption::HeaderChecksum)),
        Err(HeaderProblem::BadMagic) => Err(corrupt(Corruption::BadMagic)),
        Err(HeaderProblem::Newer(version)) => Err(Error::NewerFormat {
            path: path.to_owned(),
            version,
            supported: FORMAT_VERSION,
        }),
    }
}

/// Scans the records of a log file from `pos` to its end. `accept(offset, payload)`
/// judges each whole record whose checksums hold: `Err` is damage no torn write makes.
/// With `is_last`, a torn tail is cut off (durably with `sync`); returns where the
/// last accepted record ends.
pub(crate) fn scan_records(
    r: &mut Reader<'_>,
    mut pos: u64,
    is_last: bool,
    sync: bool,
    path: &Path,
    mut accept: impl FnMut(u64, &[u8]) -> Result<(), Corruption>,
) -> Result<u64, Error> {
    let len = r.len;
    let hlen = RECORD_HEADER_LEN as u64;
    let corrupt = |offset, kind| Error::Corrupt {
        path: path.to_owned(),
        offset,
        kind,
    };
    while pos < len {
        let (kind, torn) = if len - pos < hlen {
            (Corruption::Truncated, true)
        } else {
            let h = r.window(pos, hlen).map_err(Error::io("read", path))?;
            let all_zero = h.iter().all(|&b| b == 0);
            match decode_record_header(h) {
                Err(kind) => (kind, all_zero || r.zero_sector(pos, pos + hlen, path)?),
                Ok((plen, _)) if pos + hlen + u64::from(plen) > len => (Corruption::Truncated, true),
                Ok((plen, pcrc)) => {
                    let rec_len = hlen + u64::from(plen);
                    let rec = r.window(pos, rec_len).map_err(Error::io("read", path))?;
                    if payload_ok(&rec[RECORD_HEADER_LEN..], pcrc) {
                        match accept(pos, &rec[RECORD_HEADER_LEN..]) {
                            Ok(()) => {
                                pos += rec_len;
                                continue;
                            }
                            Err(kind) => (kind, false),
                        }
                    } else {
                        (Corruption::PayloadChecksum, r.zero_sector(pos, pos + rec_len, path)?)
                    }
                }
            }
        };
        if !(is_last && torn) {
            return Err(corrupt(pos, kind));
        }
        warn!(
            path = %path.display(),
            offset = pos,
            dropped_bytes = len - pos,
            "truncating a torn write at the tail of the log ({kind})"
        );
        r.file.set_len(pos).map_err(Error::io("truncate", path))?;
        if sync {
            r.file.sync_data().map_err(Error::io("fdatasync", path))?;
        }
        break;
    }
    Ok(pos)
}

/// Sequential reads of a file through a buffer of about [`CHUNK`] bytes.
pub(crate) struct Reader<'a> {
    pub(crate) file: &'a dyn VfsFile,
    pub(crate) len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> Reader<'a> {
    /// A reader of `file`, which is `len` bytes long.
    pub(crate) fn new(file: &'a dyn VfsFile, len: u64) -> Self {
        Reader {
            file,
            len,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The bytes `offset..offset + want`, cut at the end of the file.
    pub(crate) fn window(&mut self, offset: u64, want: u64) -> std::io::Result<&[u8]> {
        let end = (offset + want).min(self.len);
        let offset = offset.min(end);
        if offset < self.start || end > self.start + self.buf.len() as u64 {
            let read_end = end.max((offset + CHUNK).min(self.len));
            self.buf.resize((read_end - offset) as usize, 0);
            self.file.read_exact_at(&mut self.buf, offset)?;
            self.start = offset;
        }
        Ok(&self.buf[(offset - self.start) as usize..(end - self.start) as usize])
    }

    /// Whether a sector touched by `from..to` is all zeros.
    pub(crate) fn zero_sector(&mut self, from: u64, to: u64, path: &Path) -> Result<bool, Error> {
        let lo = from / SECTOR * SECTOR;
        let hi = to.div_ceil(SECTOR) * SECTOR;
        let bytes = self.window(lo, hi - lo).map_err(Error::io("read", path))?;
        Ok(has_zero_sector(bytes))
    }
}
