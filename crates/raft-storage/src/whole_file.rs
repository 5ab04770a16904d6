//! Reading the files written whole before they are renamed into place (the state file
//! and the snapshot files): the header and record checks, which name the file and take
//! any defect for corruption, and bounded reads.

use std::path::Path;

use crate::error::{Corruption, Error};
use crate::format::{
    decode_file_header, decode_record_header, payload_ok, FileKind, HeaderProblem, FORMAT_VERSION, RECORD_HEADER_LEN,
};
use crate::vfs::VfsFile;

/// The bytes `offset..offset + want` of a file, cut at its length.
pub(crate) fn read_upto(
    file: &dyn VfsFile,
    offset: usize,
    want: usize,
    len: u64,
    path: &Path,
) -> Result<Vec<u8>, Error> {
    let end = ((offset + want) as u64).min(len);
    let mut buf = vec![0u8; end.saturating_sub(offset as u64) as usize];
    file.read_exact_at(&mut buf, offset as u64)
        .map_err(Error::io("read", path))?;
    Ok(buf)
}

/// Checks the header of a file of `kind` at `path`.
pub(crate) fn check_header(bytes: &[u8], kind: FileKind, path: &Path) -> Result<(), Error> {
    let corrupt = |kind| Error::Corrupt {
        path: path.to_owned(),
        offset: 0,
        kind,
    };
    match decode_file_header(bytes, kind) {
        Ok(_) => Ok(()),
        Err(HeaderProblem::Newer(version)) => Err(Error::NewerFormat {
            path: path.to_owned(),
            version,
            supported: FORMAT_VERSION,
        }),
        Err(HeaderProblem::BadMagic) => Err(corrupt(Corruption::BadMagic)),
        Err(HeaderProblem::Short) => Err(corrupt(Corruption::ShortHeader)),
        Err(HeaderProblem::Zero | HeaderProblem::Checksum) => Err(corrupt(Corruption::HeaderChecksum)),
    }
}

/// The payload of the record at `at`, and where the record ends. These files are
/// written whole before they are renamed into place, so any defect is corruption.
pub(crate) fn read_record<'a>(bytes: &'a [u8], at: usize, path: &Path) -> Result<(&'a [u8], usize), Error> {
    let corrupt = |kind| Error::Corrupt {
        path: path.to_owned(),
        offset: at as u64,
        kind,
    };
    if bytes.len() < at + RECORD_HEADER_LEN {
        return Err(corrupt(Corruption::Truncated));
    }
    let (len, pcrc) = decode_record_header(&bytes[at..at + RECORD_HEADER_LEN]).map_err(corrupt)?;
    let end = at + RECORD_HEADER_LEN + len as usize;
    if bytes.len() < end {
        return Err(corrupt(Corruption::Truncated));
    }
    let payload = &bytes[at + RECORD_HEADER_LEN..end];
    if !payload_ok(payload, pcrc) {
        return Err(corrupt(Corruption::PayloadChecksum));
    }
    Ok((payload, end))
}
