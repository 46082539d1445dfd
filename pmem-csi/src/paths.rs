//! Node paths from requests: checked to lie beneath the kubelet's directory, and the record of what the driver made there.
//!
//! A staging or target path is accepted only when it is absolute, holds no
//! NUL byte and no `..`, and resolves (symlinks followed, as far as it
//! exists) beneath the kubelet directory; the path itself must not be a
//! symlink. The driver removes only what it made: every directory or file
//! it creates for a volume is recorded (in memory and in
//! `<state-dir>/node-paths.json`), and unstage/unpublish remove a path only
//! when it is recorded for that volume.

use crate::error::{Error, Result};
use crate::state::write_atomic;
use crate::volume::shown;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The kubelet's directory: every node path must lie beneath it.
#[derive(Debug, Clone)]
pub struct KubeletDir {
    root: PathBuf,
}

impl KubeletDir {
    /// The directory `dir`, resolved to its canonical path when it exists.
    pub fn new(dir: &Path) -> Result<Self> {
        if !dir.is_absolute() {
            return Err(Error::invalid(format!(
                "kubelet directory {} must be absolute",
                dir.display()
            )));
        }
        Ok(KubeletDir {
            root: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks path `p` of request field `field` (see the module doc).
    pub fn check(&self, field: &str, p: &str) -> Result<PathBuf> {
        let path = lexical(field, p)?;
        let outside = || {
            Error::invalid(format!(
                "{field} \"{}\" is not beneath the kubelet directory {}",
                shown(p),
                self.root.display()
            ))
        };
        if !path.starts_with(&self.root) || path == self.root {
            return Err(outside());
        }
        // The deepest part that exists must resolve beneath the root.
        let mut existing = path.as_path();
        while std::fs::symlink_metadata(existing).is_err() {
            existing = existing.parent().ok_or_else(outside)?;
        }
        let real = std::fs::canonicalize(existing).map_err(|_| outside())?;
        if !real.starts_with(&self.root) {
            return Err(outside());
        }
        if existing == path
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(Error::invalid(format!(
                "{field} \"{}\" is a symbolic link",
                shown(p)
            )));
        }
        Ok(path)
    }
}

/// Checks the form of a path from a request: present, absolute, no NUL, no `..`.
pub fn lexical(field: &str, p: &str) -> Result<PathBuf> {
    if p.is_empty() {
        return Err(Error::invalid(format!("{field} is missing")));
    }
    if p.contains('\0') {
        return Err(Error::invalid(format!("{field} contains a NUL byte")));
    }
    let path = PathBuf::from(p);
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::invalid(format!(
            "{field} \"{}\" must be absolute and must not contain '..'",
            shown(p)
        )));
    }
    Ok(path.components().collect())
}

/// What the driver made on the node, per path: the volume it made it for.
#[derive(Debug)]
pub struct Made {
    file: Option<PathBuf>,
    paths: Mutex<BTreeMap<PathBuf, String>>,
}

impl Made {
    /// The record kept in `file` (none: in memory only).
    pub fn open(file: Option<PathBuf>) -> Self {
        let paths = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Made {
            file,
            paths: Mutex::new(paths),
        }
    }

    fn save(&self, paths: &BTreeMap<PathBuf, String>) -> Result<()> {
        match &self.file {
            Some(f) => write_atomic(
                f,
                &serde_json::to_vec(paths).map_err(|e| Error::Internal(e.to_string()))?,
            ),
            None => Ok(()),
        }
    }

    /// Records that `path` was made for volume `id`.
    pub fn add(&self, path: &Path, id: &str) -> Result<()> {
        let mut p = self.paths.lock().unwrap_or_else(PoisonError::into_inner);
        p.insert(path.to_path_buf(), id.to_string());
        self.save(&p)
    }

    /// Whether `path` was made for volume `id`.
    pub fn is_made_for(&self, path: &Path, id: &str) -> bool {
        self.paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .is_some_and(|v| v == id)
    }

    /// Forgets `path`.
    pub fn forget(&self, path: &Path) -> Result<()> {
        let mut p = self.paths.lock().unwrap_or_else(PoisonError::into_inner);
        if p.remove(path).is_some() {
            self.save(&p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_beneath_the_kubelet_dir_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let k = KubeletDir::new(&root).unwrap();
        let inside = root.join("pods/a/volumes/x");
        assert_eq!(
            k.check("target path", inside.to_str().unwrap()).unwrap(),
            inside
        );
        for bad in [
            "",
            "relative/path",
            "/etc/passwd",
            "/",
            root.to_str().unwrap(),
            &format!("{}/../etc", root.display()),
            &format!("{}/a\0b", root.display()),
        ] {
            let e = k.check("target path", bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
        // A symlink inside that points outside is refused, as is a link as the path itself.
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        assert!(k
            .check("p", &format!("{}/escape/x", root.display()))
            .is_err());
        assert!(k.check("p", &format!("{}/escape", root.display())).is_err());
        std::os::unix::fs::symlink(root.join("pods"), root.join("inner")).unwrap();
        assert!(k.check("p", &format!("{}/inner", root.display())).is_err());
    }

    #[test]
    fn made_paths_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("node-paths.json");
        let m = Made::open(Some(f.clone()));
        m.add(Path::new("/k/t"), "pmem-1").unwrap();
        let m = Made::open(Some(f));
        assert!(m.is_made_for(Path::new("/k/t"), "pmem-1"));
        assert!(!m.is_made_for(Path::new("/k/t"), "pmem-2"));
        m.forget(Path::new("/k/t")).unwrap();
        assert!(!m.is_made_for(Path::new("/k/t"), "pmem-1"));
    }

    proptest! {
        #[test]
        fn no_accepted_path_leaves_the_root(s in "[a-z./\\x00]{0,40}") {
            let k = KubeletDir::new(Path::new("/var/lib/kubelet-test-root")).unwrap();
            for p in [s.clone(), format!("/var/lib/kubelet-test-root/{s}")] {
                if let Ok(path) = k.check("p", &p) {
                    prop_assert!(path.starts_with("/var/lib/kubelet-test-root/"));
                    prop_assert!(!p.contains('\0') && !p.contains("/../") && !p.ends_with("/.."));
                }
            }
        }
    }
}
