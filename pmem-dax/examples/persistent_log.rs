//! A crash-consistent append-only log in a mapped file: the model of how to
//! use `pmem_dax`.
//!
//! ```text
//! persistent_log --path FILE [--size BYTES] append N   # append N records
//! persistent_log --path FILE verify                    # one JSON line
//! ```
//!
//! The file holds a header slot and then slots of 128 bytes, each read in
//! place as sixteen `u64` words (a typed view): the record's sequence
//! number, a payload derived from it, and a checksum of both. A record is
//! written with `write_persist` (non-temporal stores and a fence on a
//! `MAP_SYNC` mapping, `msync` otherwise) before the next one starts, so
//! after a power cut at most the last written slot is torn; its checksum
//! then fails and `verify` drops it. Appending after a cut overwrites the
//! torn slot. `append` prints `persisted K` every 1,000 records, once they
//! are durable, and at the end.

use std::io::Write;
use std::process::ExitCode;

use pmem_dax::{self as dax, MapOptions, Mapping};

/// One slot: 16 words, 128 bytes (two cache lines, so it can tear).
type Slot = [u64; 16];
const SLOT: usize = std::mem::size_of::<Slot>();
const MAGIC: u64 = u64::from_le_bytes(*b"PMEMLOG2");
const DEFAULT_SIZE: u64 = 64 << 20;

/// A 64-bit multiply-xor hash of the first 15 words: enough to tell a torn
/// slot from a whole one.
fn checksum(words: &[u64]) -> u64 {
    words.iter().fold(0xcbf2_9ce4_8422_2325, |h, &w| {
        (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29)
    })
}

/// Record number `seq` as it must appear in its slot.
fn record(seq: u64) -> Slot {
    let mut r: Slot = [0; 16];
    r[0] = seq;
    for (i, w) in r[1..15].iter_mut().enumerate() {
        *w = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64;
    }
    r[15] = checksum(&r[..15]);
    r
}

fn is_record(slot: &Slot, seq: u64) -> bool {
    slot[0] == seq && slot[15] == checksum(&slot[..15]) && *slot == record(seq)
}

fn slot(map: &Mapping, i: usize) -> Result<&Slot, String> {
    map.view::<Slot>((i + 1) * SLOT).map_err(|e| e.to_string())
}

fn capacity(map: &Mapping) -> usize {
    map.len() / SLOT - 1
}

/// Whether every byte from `offset` on is zero (compared a page at a time:
/// fast even in a debug build).
fn zero_from(map: &Mapping, offset: usize) -> bool {
    static ZERO: [u8; 4096] = [0; 4096];
    map.as_slice()[offset.min(map.len())..]
        .chunks(4096)
        .all(|c| c == &ZERO[..c.len()])
}

/// What `verify` found.
struct Scan {
    records: u64,
    valid: bool,
    torn_tail: bool,
}

/// Checks every slot: records numbered from 0, then empty slots only; one
/// bad slot right after the records, followed by empty slots only, is a
/// torn tail. Anything else makes the log invalid.
fn scan(map: &Mapping) -> Result<Scan, String> {
    for i in 0..capacity(map) {
        let s = slot(map, i)?;
        if is_record(s, i as u64) {
            continue;
        }
        let empty = *s == [0; 16];
        let rest_empty = zero_from(map, (i + 2) * SLOT);
        return Ok(Scan {
            records: i as u64,
            valid: rest_empty,
            torn_tail: !empty && rest_empty,
        });
    }
    Ok(Scan {
        records: capacity(map) as u64,
        valid: true,
        torn_tail: false,
    })
}

/// Where the next record goes: after the last whole record. Slots fill in
/// order, so the first empty slot is found by bisection; a torn slot just
/// before it is overwritten.
fn end_of_log(map: &Mapping) -> Result<usize, String> {
    let (mut lo, mut hi) = (0, capacity(map));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if *slot(map, mid)? == [0; 16] {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    match lo {
        0 => Ok(0),
        n if is_record(slot(map, n - 1)?, n as u64 - 1) => Ok(n),
        n if n == 1 || is_record(slot(map, n - 2)?, n as u64 - 2) => Ok(n - 1),
        n => Err(format!(
            "{}: corrupt log before slot {n}",
            map.path().display()
        )),
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
    let header = *map.view::<[u64; 2]>(0).map_err(|e| e.to_string())?;
    if header == [0, 0] {
        let h = [MAGIC.to_le_bytes(), (SLOT as u64).to_le_bytes()].concat();
        map.write_persist(0, &h).map_err(|e| e.to_string())?;
    } else if header != [MAGIC, SLOT as u64] {
        return Err(format!(
            "{path}: not a persistent log of {SLOT}-byte records"
        ));
    }
    Ok(map)
}

fn append(path: &str, size: u64, n: u64) -> Result<(), String> {
    let mut map = open(path, Some(size))?;
    eprintln!(
        "persistent_log: {path} pmem={} ({})",
        map.is_pmem(),
        dax::features()
    );
    let mut total = end_of_log(&map)?;
    let mut out = std::io::stdout().lock();
    let mut report = |k: usize| {
        writeln!(out, "persisted {k}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    };
    for _ in 0..n {
        if total == capacity(&map) {
            report(total)?;
            return Err(format!("{path}: full after {total} records"));
        }
        let bytes: Vec<u8> = record(total as u64)
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        map.write_persist((total + 1) * SLOT, &bytes)
            .map_err(|e| e.to_string())?;
        total += 1;
        if total % 1000 == 0 {
            report(total)?;
        }
    }
    if total % 1000 != 0 {
        report(total)?;
    }
    Ok(())
}

fn verify(path: &str) -> Result<bool, String> {
    let map = open(path, None)?;
    eprintln!("persistent_log: {path} ({})", dax::features());
    let s = scan(&map)?;
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
