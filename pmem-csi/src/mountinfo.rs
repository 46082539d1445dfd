//! What is mounted where, read from `/proc/self/mountinfo` (never guessed).

use std::path::{Path, PathBuf};

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub target: PathBuf,
    /// The root of the mount within its filesystem (`/` unless a bind of a subdirectory).
    pub root: String,
    /// The device number `major:minor`.
    pub dev: String,
    /// Filesystem type.
    pub fstype: String,
    /// The mount source, e.g. `/dev/pmem0`.
    pub source: String,
    /// Per-mount options (`rw`, `ro`, ...) and superblock options (`dax=always`...).
    pub options: Vec<String>,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let g: Vec<&str> = post.split(' ').collect();
            if f.len() < 6 || g.len() < 3 {
                return None;
            }
            let mut options: Vec<String> = f[5].split(',').map(str::to_string).collect();
            options.extend(g[2].split(',').map(str::to_string));
            Some(Mount {
                target: PathBuf::from(unescape(f[4])),
                root: unescape(f[3]),
                dev: f[2].to_string(),
                fstype: g[0].to_string(),
                source: unescape(g[1]),
                options,
            })
        })
        .collect()
}

/// The current mounts of this process's namespace.
pub fn read() -> Vec<Mount> {
    parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// The topmost mount at `target`, if `target` is a mount point.
pub fn at(target: &Path) -> Option<Mount> {
    read().into_iter().rev().find(|m| m.target == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
98 22 259:5 / /var/lib/kubelet/plugins/pv\\040one/globalmount rw,relatime shared:50 - ext4 /dev/pmem0 rw,dax=always
99 22 259:5 / /var/lib/kubelet/pods/x/volumes/mount ro,relatime shared:50 - ext4 /dev/pmem0 rw,dax=always
100 22 0:5 /pmem1 /target/block rw - devtmpfs udev rw,size=1k
garbage line";

    #[test]
    fn parses_fields_escapes_and_options() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[1].target,
            PathBuf::from("/var/lib/kubelet/plugins/pv one/globalmount")
        );
        assert_eq!(m[1].source, "/dev/pmem0");
        assert!(m[1].options.contains(&"dax=always".to_string()));
        assert!(m[2].options.contains(&"ro".to_string()));
        assert_eq!(m[3].root, "/pmem1");
        assert_eq!(m[3].fstype, "devtmpfs");
    }
}
