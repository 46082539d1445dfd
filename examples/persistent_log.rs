//! A crash-consistent append-only log in a mapped file: the model of how to
//! use `pmem::dax`.
//!
//! ```text
//! persistent_log --path FILE [--size BYTES] append N   # append N records
//! persistent_log --path FILE verify                    # one JSON line
//! ```
//!
//! The file holds a header slot and then fixed-size slots of 128 bytes:
//! `seq` (u64), a payload derived from `seq`, and a 64-bit checksum of both.
//! A record is written with `write_persist` (non-temporal stores and a fence
//! on a `MAP_SYNC` mapping, `msync` otherwise) before the next one starts,
//! so after a power cut at most the last slot is torn; its checksum
//! then fails and `verify` drops it. Appending after a cut overwrites the
//! torn slot. `append` prints `persisted K` every 1,000 records, once they
//! are durable, and at the end.

use std::io::Write;
use std::process::ExitCode;

use pmem::dax::{self, MapOptions, Mapping};

const SLOT: usize = 128;
const MAGIC: &[u8; 8] = b"PMEMLOG1";
const DEFAULT_SIZE: u64 = 64 << 20;

/// FNV-1a, 64-bit: enough to tell a torn slot from a whole one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn record(seq: u64) -> [u8; SLOT] {
    let mut r = [0u8; SLOT];
    r[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in r[8..SLOT - 8].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_mul(7).wrapping_add(i as u8);
    }
    let sum = checksum(&r[..SLOT - 8]);
    r[SLOT - 8..].copy_from_slice(&sum.to_le_bytes());
    r
}

/// What a scan of the slots found.
struct Scan {
    records: u64,
    valid: bool,
    torn_tail: bool,
}

/// Whether every byte is zero (compared a page at a time: fast even in a
/// debug build).
fn all_zero(bytes: &[u8]) -> bool {
    static ZERO: [u8; 4096] = [0; 4096];
    bytes.chunks(4096).all(|c| c == &ZERO[..c.len()])
}

/// Reads slots until the first empty one; everything after it must be
/// empty too. A bad slot is a torn tail when only empty slots follow it;
/// anything else makes the log invalid.
fn scan(log: &[u8]) -> Scan {
    let mut records = 0;
    for (i, slot) in log.chunks_exact(SLOT).enumerate().skip(1) {
        let rest_empty = || all_zero(&log[(i + 1) * SLOT..]);
        if all_zero(slot) {
            return Scan {
                records,
                valid: rest_empty(),
                torn_tail: false,
            };
        }
        if slot != record(records) {
            let torn = rest_empty();
            return Scan {
                records,
                valid: torn,
                torn_tail: torn,
            };
        }
        records += 1;
    }
    Scan {
        records,
        valid: true,
        torn_tail: false,
    }
}

/// Opens the log (creating it with `create` bytes when given), locked
/// against other copies of this program for as long as the mapping lives.
fn open(path: &str, create: Option<u64>) -> Result<Mapping, String> {
    let opts = match create {
        Some(size) => MapOptions::new().create(size),
        None => MapOptions::new(),
    };
    // SAFETY: only this program writes log files, and `lock(true)` makes it
    // hold an exclusive lock on this one for as long as the mapping lives.
    let mut map = unsafe { opts.lock(true).map(path) }.map_err(|e| e.to_string())?;
    let header = map.bytes(0, 16).map_err(|e| e.to_string())?;
    if header.iter().all(|&b| b == 0) {
        let mut h = [0u8; 16];
        h[..8].copy_from_slice(MAGIC);
        h[8..].copy_from_slice(&(SLOT as u64).to_le_bytes());
        map.write_persist(0, &h).map_err(|e| e.to_string())?;
    } else if &header[..8] != MAGIC || header[8..16] != (SLOT as u64).to_le_bytes() {
        return Err(format!(
            "{path}: not a persistent log of {SLOT}-byte records"
        ));
    }
    Ok(map)
}

fn append(path: &str, size: u64, n: u64) -> Result<(), String> {
    let mut map = open(path, Some(size))?;
    eprintln!(
        "persistent_log: {} pmem={} ({})",
        path,
        map.is_pmem(),
        dax::features()
    );
    let start = scan(map.as_slice());
    if !start.valid {
        return Err(format!(
            "{path}: the log is corrupt after record {}",
            start.records
        ));
    }
    let capacity = (map.len() / SLOT - 1) as u64;
    let mut out = std::io::stdout().lock();
    let mut total = start.records;
    for _ in 0..n {
        if total == capacity {
            return Err(format!("{path}: full after {total} records"));
        }
        let at = (total as usize + 1) * SLOT;
        map.write_persist(at, &record(total))
            .map_err(|e| e.to_string())?;
        total += 1;
        if total % 1000 == 0 {
            writeln!(out, "persisted {total}")
                .and_then(|_| out.flush())
                .map_err(|e| e.to_string())?;
        }
    }
    if total % 1000 != 0 {
        writeln!(out, "persisted {total}")
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn verify(path: &str) -> Result<bool, String> {
    let map = open(path, None)?;
    eprintln!("persistent_log: {} ({})", path, dax::features());
    let s = scan(map.as_slice());
    println!(
        "{{\"records\":{},\"valid\":{},\"pmem\":{},\"torn_tail_dropped\":{}}}",
        s.records,
        s.valid,
        map.is_pmem(),
        s.torn_tail
    );
    Ok(s.valid)
}

fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 1 << 10),
        (i, 'M' | 'm') => (&text[..i], 1 << 20),
        (i, 'G' | 'g') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

const USAGE: &str = "usage: persistent_log --path FILE [--size BYTES] append N | verify";

fn run(args: &[String]) -> Result<bool, String> {
    let (mut path, mut size, mut rest) = (None, DEFAULT_SIZE, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--path" => path = it.next().cloned(),
            "--size" => {
                size = it
                    .next()
                    .and_then(|s| parse_size(s))
                    .ok_or("--size: expected bytes, e.g. 64M")?
            }
            _ => rest.push(a.as_str()),
        }
    }
    let path = path.ok_or(USAGE)?;
    match rest.as_slice() {
        ["append", n] => {
            let n = n.parse().map_err(|_| format!("append: not a count: {n}"))?;
            append(&path, size, n).map(|()| true)
        }
        ["verify"] => verify(&path),
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("persistent_log: {e}");
            ExitCode::from(2)
        }
    }
}
