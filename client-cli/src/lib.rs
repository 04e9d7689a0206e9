//! The fieldsync client core library.
