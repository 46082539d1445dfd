//! Is a device in use? Block devices by an exclusive open and their holders, character devices by /proc.

use std::os::unix::fs::OpenOptionsExt;

/// Why block device `name` (e.g. `pmem0`) is busy, or `None`.
pub(crate) fn block_device(name: &str) -> Option<String> {
    let holders: Vec<String> = std::fs::read_dir(format!("/sys/block/{name}/holders"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if !holders.is_empty() {
        return Some(format!("/dev/{name} is held by {}", holders.join(", ")));
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(format!("/dev/{name}"))
    {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            Some(format!("/dev/{name} is mounted or open exclusively"))
        }
        _ => None,
    }
}

/// Why character device `name` (e.g. `dax0.1`) is busy, or `None`: a process has it open or mapped.
pub(crate) fn char_device(name: &str) -> Option<String> {
    let path = format!("/dev/{name}");
    let procs = std::fs::read_dir("/proc").ok()?;
    for p in procs.filter_map(|e| e.ok()) {
        let pid = p.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let maps = std::fs::read_to_string(p.path().join("maps")).unwrap_or_default();
        if maps.lines().any(|l| l.ends_with(&path)) {
            return Some(format!("{path} is mapped by process {pid}"));
        }
        let open = std::fs::read_dir(p.path().join("fd"))
            .map(|d| {
                d.filter_map(|e| e.ok()).any(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == path.as_str())
                })
            })
            .unwrap_or(false);
        if open {
            return Some(format!("{path} is open by process {pid}"));
        }
    }
    None
}
