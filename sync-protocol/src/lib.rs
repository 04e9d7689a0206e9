//! fieldsync's shared core: the survey model and its validation, the Automerge documents,
//! the CBOR wire messages and the encryption envelope. It performs no I/O.
#![forbid(unsafe_code)]
