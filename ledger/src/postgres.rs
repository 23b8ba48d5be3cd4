//! The PostgreSQL engine (being written).
