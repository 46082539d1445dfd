//! The namespace allocator: region model, simulator backend and placement policies.
