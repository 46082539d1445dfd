//! One in-memory lock per volume name or id: a second operation on the same volume is ABORTED.

use crate::error::{Error, Result};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// The set of volume keys with an operation in flight.
#[derive(Debug, Default, Clone)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

/// Held while an operation runs; releases its keys when dropped.
#[derive(Debug)]
pub struct Guard {
    set: InFlight,
    keys: Vec<String>,
}

impl InFlight {
    /// Takes every key in `keys`, or none: [`Error::Aborted`] if one is taken.
    pub fn lock(&self, keys: &[&str]) -> Result<Guard> {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = keys.iter().find(|k| set.contains(**k)) {
            return Err(Error::Aborted(format!(
                "an operation on volume {k} is already in progress"
            )));
        }
        for k in keys {
            set.insert((*k).to_string());
        }
        Ok(Guard {
            set: self.clone(),
            keys: keys.iter().map(|k| (*k).to_string()).collect(),
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut set = self.set.0.lock().unwrap_or_else(PoisonError::into_inner);
        for k in &self.keys {
            set.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_aborted_until_the_first_drops() {
        let f = InFlight::default();
        let g = f.lock(&["vol-a", "pmem-1"]).unwrap();
        let e = f.lock(&["pmem-1"]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Aborted);
        assert!(f.lock(&["vol-b"]).is_ok());
        drop(g);
        assert!(f.lock(&["vol-a", "pmem-1"]).is_ok());
    }
}
