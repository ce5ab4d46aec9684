//! The embedded store's data directory: creating it owner-only, its lock file (one process at a time), and
//! the key-encryption key generated into it when none is configured.
//!
//! Nothing here touches the database: `SqliteStore::open` takes the lock and then opens its file.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;

use crate::config::KeyEncryptionKey;

const LOCK_FILE: &str = "identsphere.lock";
const KEK_FILE: &str = "key-encryption-key";

/// Creates `dir` if needed and makes it owner-only.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// Creates `data_dir` (owner-only) if needed and takes its lock: the file returned, held open, keeps every
/// other IdentSphere process off the directory.
///
/// # Errors
/// When the directory cannot be created or another process holds it.
pub(super) fn lock(data_dir: &Path) -> anyhow::Result<File> {
    private_dir(data_dir).with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let lock_path = data_dir.join(LOCK_FILE);
    let lock = OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path)?;
    if lock.try_lock().is_err() {
        bail!(
            "the data directory {} is in use by another IdentSphere process (it holds {}); \
             the embedded store serves a single node",
            data_dir.display(),
            lock_path.display()
        );
    }
    Ok(lock)
}

/// The key-encryption key of an embedded install: from the environment if set, else generated once into
/// the data directory (owner-only).
///
/// # Errors
/// When the file cannot be read or written, or holds something else than 32 bytes of base64.
pub fn embedded_kek(data_dir: &Path, configured: Option<&KeyEncryptionKey>) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(kek) = configured {
        return Ok(kek.clone());
    }
    private_dir(data_dir)?;
    let path = data_dir.join(KEK_FILE);
    if !path.exists() {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| anyhow!("no randomness"))?;
        let mut file = OpenOptions::new().create_new(true).write(true).mode(0o600).open(&path)?;
        file.write_all(base64::engine::general_purpose::STANDARD.encode(key).as_bytes())?;
        file.sync_all()?;
        tracing::info!(path = %path.display(), "generated the key-encryption key");
    }
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| anyhow!("{} is not base64", path.display()))?;
    Ok(KeyEncryptionKey(bytes.try_into().map_err(|_| anyhow!("{} must hold 32 bytes", path.display()))?))
}
