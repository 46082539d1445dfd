//! `pmem-ndctl`: a safe API over libndctl.
