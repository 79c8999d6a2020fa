//! Generates the FFI message types from one pinned artifact: the FileDescriptorSet derived from the
//! `livekit` 1.2.1 wheel's `_pb2` modules (`scripts/wheel_fds.py`, see `proto/SOURCE.md`). No protoc, no
//! network: the set is committed, and checked here against its sha256 so that the types always match the
//! library version `src/lib.rs` accepts.
use std::error::Error;

use prost::Message;
use sha2::{Digest, Sha256};

const FDS: &str = "proto/livekit_ffi_wheel_1.2.1.fds";
const FDS_SHA256: &str = "0d1f0abb29c9b801337679a13568114f04465856749311ee067882ddc3708a5f";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={FDS}");
    let bytes = std::fs::read(FDS).map_err(|e| format!("{FDS}: {e}"))?;
    let got = format!("{:x}", Sha256::digest(&bytes));
    if got != FDS_SHA256 {
        return Err(format!("{FDS} has sha256 {got}, not the pinned {FDS_SHA256} (see proto/SOURCE.md)").into());
    }
    let fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
