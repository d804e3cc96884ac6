//! The receipt archive: one file per month of acceptance (till-local),
//! `receipts-YYYY-MM.jsonl.gz`, holding one JSON line per receipt — the
//! receipt exactly as the journal held it, with its fiscal attributes, jobs
//! and state history — beside a `sha256sum`-format checksum file
//! `receipts-YYYY-MM.jsonl.gz.sha256`.
//!
//! A file grows by appending one gzip member per chunk of receipts (a
//! multi-member gzip file is still one valid gzip stream: `zcat` reads it
//! whole), fsynced before the journal deletes the chunk. Nothing here knows
//! SQL: the journal's retention run (`retention.rs`) decides what goes in and
//! records each chunk before it is written, so a crash can be undone.

use super::StoredReceipt;
use flate2::Compression;
use flate2::bufread::{GzDecoder, MultiGzDecoder};
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("archive {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One monthly archive file, for listings.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveFile {
    /// `YYYY-MM`, the till-local month the receipts were accepted in.
    pub month: String,
    pub file: String,
    pub bytes: u64,
    /// From the `.sha256` file beside it; `None` if that is missing.
    pub sha256: Option<String>,
}

/// The archive directory.
#[derive(Clone, Debug)]
pub struct Archive {
    dir: PathBuf,
}

/// Is `month` of the form `YYYY-MM`?
pub fn valid_month(month: &str) -> bool {
    let b = month.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit)
}

impl Archive {
    pub fn new(dir: impl Into<PathBuf>) -> Archive {
        Archive { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file(&self, month: &str) -> PathBuf {
        self.dir.join(format!("receipts-{month}.jsonl.gz"))
    }

    fn sidecar(&self, month: &str) -> PathBuf {
        self.dir.join(format!("receipts-{month}.jsonl.gz.sha256"))
    }

    /// The file's length now (0 when it does not exist yet).
    pub fn len(&self, month: &str) -> Result<u64, ArchiveError> {
        let path = self.file(month);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Append `lines` as one gzip member and fsync; returns the new length.
    pub fn append(&self, month: &str, lines: &[String]) -> Result<u64, ArchiveError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.file(month);
        let created = !path.exists();
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        for line in lines {
            encoder
                .write_all(line.as_bytes())
                .and_then(|()| encoder.write_all(b"\n"))
                .map_err(io_err(&path))?;
        }
        let member = encoder.finish().map_err(io_err(&path))?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.write_all(&member).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        if created {
            sync_dir(&self.dir)?;
        }
        file.metadata().map(|m| m.len()).map_err(io_err(&path))
    }

    /// Cut the file back to `len` (undo a partly written chunk).
    pub fn truncate(&self, month: &str, len: u64) -> Result<(), ArchiveError> {
        let path = self.file(month);
        let file = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && len == 0 => return Ok(()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        // Only ever shorter: never pad a file that lost its tail some other way.
        if file.metadata().map_err(io_err(&path))?.len() <= len {
            return Ok(());
        }
        file.set_len(len).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))
    }

    /// The receipt ids in the gzip member starting at `offset`, and where the
    /// member ends; `None` if there is no whole member there.
    pub fn member_ids(
        &self,
        month: &str,
        offset: u64,
    ) -> Result<Option<(Vec<String>, u64)>, ArchiveError> {
        let path = self.file(month);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let len = file.metadata().map_err(io_err(&path))?.len();
        if offset >= len {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
        let mut decoder = GzDecoder::new(BufReader::new(file));
        let mut text = String::new();
        if decoder.read_to_string(&mut text).is_err() {
            return Ok(None);
        }
        let mut reader = decoder.into_inner();
        let end = reader.stream_position().map_err(io_err(&path))?;
        let mut ids = Vec::new();
        for line in text.lines() {
            match line_id(line) {
                Some(id) => ids.push(id),
                None => return Ok(None),
            }
        }
        Ok(Some((ids, end)))
    }

    /// Write the checksum file for the month's archive (atomically).
    pub fn seal(&self, month: &str) -> Result<String, ArchiveError> {
        let path = self.file(month);
        let sha = sha256_file(&path)?;
        let side = self.sidecar(month);
        let tmp = side.with_extension("sha256.tmp");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(format!("{sha}  {name}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &side).map_err(io_err(&side))?;
        sync_dir(&self.dir)?;
        Ok(sha)
    }

    /// Does the checksum file match the archive file (and is it there)?
    pub fn sealed(&self, month: &str) -> Result<bool, ArchiveError> {
        let Some(recorded) = self.recorded_sha(month) else {
            return Ok(false);
        };
        Ok(sha256_file(&self.file(month))? == recorded)
    }

    fn recorded_sha(&self, month: &str) -> Option<String> {
        std::fs::read_to_string(self.sidecar(month))
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
    }

    /// Every monthly file, oldest first.
    pub fn list(&self) -> Result<Vec<ArchiveFile>, ArchiveError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(month) = name
                .strip_prefix("receipts-")
                .and_then(|n| n.strip_suffix(".jsonl.gz"))
            else {
                continue;
            };
            if !valid_month(month) {
                continue;
            }
            let bytes = entry.metadata().map_err(io_err(&entry.path()))?.len();
            files.push(ArchiveFile {
                month: month.to_string(),
                file: entry.path().display().to_string(),
                bytes,
                sha256: self.recorded_sha(month),
            });
        }
        files.sort_by(|a, b| a.month.cmp(&b.month));
        Ok(files)
    }

    /// Every receipt id in the month's file, in order (for checks and tests).
    pub fn ids(&self, month: &str) -> Result<Vec<String>, ArchiveError> {
        let mut ids = Vec::new();
        self.scan(month, |line| {
            ids.push(line_id(line).unwrap_or_default());
            false
        })?;
        Ok(ids)
    }

    /// Find receipt `id`: first in the `hint` months, then in every file,
    /// newest first.
    pub fn find(&self, id: &str, hint: &[String]) -> Result<Option<StoredReceipt>, ArchiveError> {
        let mut months: Vec<String> = hint.to_vec();
        for f in self.list()?.into_iter().rev() {
            if !months.contains(&f.month) {
                months.push(f.month);
            }
        }
        let needle = format!("\"id\":\"{id}\"");
        for month in months {
            let mut found = None;
            self.scan(&month, |line| {
                if line.starts_with(&format!("{{{needle}")) {
                    found = Some(line.to_string());
                    true
                } else {
                    false
                }
            })?;
            if let Some(line) = found {
                let receipt = serde_json::from_str(&line).map_err(|e| ArchiveError::Corrupt {
                    path: self.file(&month),
                    message: format!("receipt {id}: {e}"),
                })?;
                return Ok(Some(receipt));
            }
        }
        Ok(None)
    }

    /// Feed each line of the month's file to `f` until it returns true.
    fn scan(&self, month: &str, mut f: impl FnMut(&str) -> bool) -> Result<(), ArchiveError> {
        let path = self.file(month);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let reader = BufReader::new(MultiGzDecoder::new(BufReader::new(file)));
        for line in reader.lines() {
            let line = line.map_err(|e| ArchiveError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
            if f(&line) {
                break;
            }
        }
        Ok(())
    }
}

/// The line's receipt id (every line starts with `{"id":"…"`).
fn line_id(line: &str) -> Option<String> {
    let rest = line.strip_prefix("{\"id\":\"")?;
    Some(rest[..rest.find('"')?].to_string())
}

fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_append_read_back_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::new(dir.path().join("archive"));
        let first = a
            .append(
                "2026-01",
                &[r#"{"id":"a","x":1}"#.into(), r#"{"id":"b"}"#.into()],
            )
            .unwrap();
        let second = a.append("2026-01", &[r#"{"id":"c"}"#.into()]).unwrap();
        assert_eq!(
            a.member_ids("2026-01", 0).unwrap(),
            Some((vec!["a".to_string(), "b".to_string()], first))
        );
        assert_eq!(
            a.member_ids("2026-01", first).unwrap(),
            Some((vec!["c".to_string()], second))
        );
        assert_eq!(a.ids("2026-01").unwrap(), ["a", "b", "c"]);
        // A torn append: half a member at the end.
        let mut f = OpenOptions::new()
            .append(true)
            .open(a.file("2026-01"))
            .unwrap();
        f.write_all(&[0x1f, 0x8b, 8, 0, 0]).unwrap();
        assert_eq!(a.member_ids("2026-01", second).unwrap(), None);
        a.truncate("2026-01", second).unwrap();
        assert_eq!(a.ids("2026-01").unwrap(), ["a", "b", "c"]);
        assert!(!a.sealed("2026-01").unwrap());
        a.seal("2026-01").unwrap();
        assert!(a.sealed("2026-01").unwrap());
        let listed = a.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].month, "2026-01");
        assert_eq!(listed[0].bytes, second);
    }

    #[test]
    fn months_are_checked() {
        assert!(valid_month("2026-01"));
        assert!(!valid_month("2026-1"));
        assert!(!valid_month("../etc"));
    }
}
