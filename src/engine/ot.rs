//! Operational transformation for collaborative plain-text documents (being written).
