//! File storage for uploads (prescriptions, lab reports): content-addressed files under the data
//! directory, written to a temporary name and renamed into place so a reader never sees half a file.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// Local-disk storage rooted at a folder (by default `<data_dir>/files`).
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Stores `bytes` under `key` (a relative path of `[a-z0-9_/.-]` parts, no `..`).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path_of(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let partial = path.with_extension(format!("partial-{}", uuid::Uuid::new_v4().simple()));
        let mut file = tokio::fs::File::create(&partial).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&partial, &path).await
    }

    /// The bytes stored under `key`.
    pub async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path_of(key)?).await
    }

    fn path_of(&self, key: &str) -> std::io::Result<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
            });
        if !safe {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unsafe storage key {key:?}"),
            ));
        }
        Ok(Path::new(&self.root).join(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_round_trip_and_keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        storage.put("rx/7/abc.pdf", b"%PDF-1.7").await.unwrap();
        assert_eq!(storage.get("rx/7/abc.pdf").await.unwrap(), b"%PDF-1.7");
        for bad in ["../etc/passwd", "/abs", "rx//x", "rx/../x", "Rx/x", ""] {
            assert!(storage.put(bad, b"x").await.is_err(), "{bad}");
        }
    }
}
