//! The straightforward reference matcher. SKELETON.
