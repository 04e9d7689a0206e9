//! The fieldsync sync server library.
