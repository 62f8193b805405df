//! Content digests (`sha256:<hex>`): how blobs are named in the store, and the check that what
//! a registry sent is what the manifest asked for. oci-client already checks each blob it
//! pulls; the store checks again as it takes a blob in, so that nothing unverified is ever
//! named by a digest on disk, whoever wrote it.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The `sha256:<hex>` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
    )
}

/// The hexadecimal part of a `sha256:<hex>` digest, refused unless it is 64 lowercase hex
/// digits: it becomes a file name in the store, so it must not carry a '/' or a "..".
pub fn sha256_hex(digest: &str) -> Result<&str> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        bail!("digest {digest:?} is not a sha256 digest");
    };
    if hex.len() != 64 || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        bail!("digest {digest:?} is not 64 lowercase hexadecimal digits after sha256:");
    }
    Ok(hex)
}

/// Checks that the file at `path` has the digest `expected`.
pub fn verify_file(path: &Path, expected: &str) -> Result<()> {
    sha256_hex(expected)?;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        context.update(&buffer[..read]);
    }
    let actual = format!("sha256:{}", hex(context.finish().as_ref()));
    if actual != expected {
        bail!("digest mismatch: expected {expected}, the content has {actual}");
    }
    Ok(())
}

/// A writer that passes bytes on and computes their `sha256:<hex>` digest and count, so that
/// content read once (from an archive) is both written and named.
pub(super) struct DigestingWriter<W> {
    inner: W,
    context: ring::digest::Context,
    written: u64,
}

impl<W: Write> DigestingWriter<W> {
    /// Passes bytes on to `inner`.
    pub(super) fn new(inner: W) -> DigestingWriter<W> {
        DigestingWriter {
            inner,
            context: ring::digest::Context::new(&ring::digest::SHA256),
            written: 0,
        }
    }

    /// The digest and number of the bytes written, and the inner writer.
    pub(super) fn finish(self) -> (String, u64, W) {
        let digest = format!("sha256:{}", hex(self.context.finish().as_ref()));
        (digest, self.written, self.inner)
    }
}

impl<W: Write> Write for DigestingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.context.update(&bytes[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_and_checks_sha256() {
        // sha256("") is well known.
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_digest(b""), empty);
        assert!(sha256_hex(empty).is_ok());
        assert!(sha256_hex("sha256:../../etc").is_err());
        assert!(sha256_hex("md5:abc").is_err());
    }

    #[test]
    fn refuses_content_that_does_not_match() {
        let dir = std::env::temp_dir().join(format!("digest-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blob");
        std::fs::write(&path, b"hello").unwrap();
        assert!(verify_file(&path, &sha256_digest(b"hello")).is_ok());
        let error = verify_file(&path, &sha256_digest(b"hullo")).unwrap_err();
        assert!(error.to_string().contains("digest mismatch"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
