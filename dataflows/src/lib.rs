//! placeholder; see the engine issue
